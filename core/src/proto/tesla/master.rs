//! The sans-IO bus master (in progress).
