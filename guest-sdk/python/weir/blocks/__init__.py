"""Blocks (Prefect's ``prefect.blocks``): only secrets, in ``weir.blocks.system``."""
