//! Wire protocols: byte-exact codecs and the sans-IO drivers built on them.
//!
//! Every decoder here takes hostile bytes: it returns an error for anything malformed and never
//! panics, whatever it is given.

pub mod tesla;
