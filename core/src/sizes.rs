//! How many cells and sensors one pack controller supervises: the sizes of its fixed arrays.
//!
//! Vocabulary: measurement, balancing, charge control, the SoC estimator and the configuration
//! all size their arrays and check their counts against these.

/// Most series cells one pack controller supervises (32 Tesla modules, or 12 x 16S).
pub const MAX_CELLS: usize = 192;
/// Most temperature sensors one pack controller supervises.
pub const MAX_TEMPERATURES: usize = 64;
