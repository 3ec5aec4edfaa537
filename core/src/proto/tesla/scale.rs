//! Raw ADC values of the boards to physical units and back (`shared/protocols.md` §1.8), in
//! integer arithmetic.
