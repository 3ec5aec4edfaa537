//! The combiner (being written).
