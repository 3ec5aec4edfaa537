//! Low-voltage CAN BMS protocol (Pylontech, SMA, Victron): `shared/protocols.md` §2. (Being written.)
