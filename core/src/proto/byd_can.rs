//! BYD Battery-Box Premium HVS CAN: `shared/protocols.md` §3.2–3.7. (Being written.)
