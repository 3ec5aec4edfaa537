//! The deterministic engine. (Being written.)
