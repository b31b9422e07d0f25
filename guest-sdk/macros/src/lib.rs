//! weir-sdk-macros
