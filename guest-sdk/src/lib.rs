//! weir-sdk
