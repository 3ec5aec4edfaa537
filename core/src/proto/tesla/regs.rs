//! The bq76PL536A register map and bit definitions as the Tesla module boards use them
//! (`shared/protocols.md` §1.6–1.7). Multi-byte ADC results are 14-bit, big-endian, high byte at
//! the lower address.

/// DEVICE_STATUS (read only).
pub const DEVICE_STATUS: u8 = 0x00;
/// GPAI high byte: the module (brick) voltage; the low byte follows.
pub const GPAI: u8 = 0x01;
/// VCELL1 high byte; cell `k` (0-based) is at `VCELL1 + 2 k`.
pub const VCELL1: u8 = 0x03;
/// TEMPERATURE1 (TS1) high byte; TS2 follows at 0x11.
pub const TEMPERATURE1: u8 = 0x0F;
/// TEMPERATURE2 (TS2) high byte.
pub const TEMPERATURE2: u8 = 0x11;
/// ALERT_STATUS: latched, write 1 then 0 to clear.
pub const ALERT_STATUS: u8 = 0x20;
/// FAULT_STATUS: latched, write 1 then 0 to clear.
pub const FAULT_STATUS: u8 = 0x21;
/// COV_FAULT: bit k = cell k+1 over voltage.
pub const COV_FAULT: u8 = 0x22;
/// CUV_FAULT: bit k = cell k+1 under voltage.
pub const CUV_FAULT: u8 = 0x23;
/// PRESULT_A: parity results of the group-3 registers.
pub const PRESULT_A: u8 = 0x24;
/// PRESULT_B: parity results of the user registers.
pub const PRESULT_B: u8 = 0x25;
/// ADC_CONTROL.
pub const ADC_CONTROL: u8 = 0x30;
/// IO_CONTROL.
pub const IO_CONTROL: u8 = 0x31;
/// CB_CTRL: balance outputs, bit k = cell k+1.
pub const CB_CTRL: u8 = 0x32;
/// CB_TIME: balance timer.
pub const CB_TIME: u8 = 0x33;
/// ADC_CONVERT: write 1 to start a conversion.
pub const ADC_CONVERT: u8 = 0x34;
/// SHDW_CTRL: write [`SHADOW_UNLOCK`] right before each group-3 write.
pub const SHDW_CTRL: u8 = 0x3A;
/// ADDRESS_CONTROL: bits 5..0 address, bit 7 ADDR_RQST.
pub const ADDRESS_CONTROL: u8 = 0x3B;
/// RESET: write [`RESET_MAGIC`].
pub const RESET: u8 = 0x3C;
/// TEST_SELECT (unused).
pub const TEST_SELECT: u8 = 0x3D;
/// E_EN (EPROM programming enable, unused).
pub const E_EN: u8 = 0x3F;
/// FUNCTION_CONFIG (group 3).
pub const FUNCTION_CONFIG: u8 = 0x40;
/// IO_CONFIG (group 3).
pub const IO_CONFIG: u8 = 0x41;
/// CONFIG_COV (group 3): bit 7 disables; V = 2.000 V + 50 mV × code.
pub const CONFIG_COV: u8 = 0x42;
/// CONFIG_COVT (group 3): bit 7 ms (else µs) units; bits 4..0 × 100 units.
pub const CONFIG_COVT: u8 = 0x43;
/// CONFIG_CUV (group 3): bit 7 disables; V = 0.700 V + 100 mV × code.
pub const CONFIG_CUV: u8 = 0x44;
/// CONFIG_CUVT (group 3): as CONFIG_COVT.
pub const CONFIG_CUVT: u8 = 0x45;
/// CONFIG_OT (group 3): low nibble OT1, high nibble OT2.
pub const CONFIG_OT: u8 = 0x46;
/// CONFIG_OTT (group 3): delay in 10 ms units.
pub const CONFIG_OTT: u8 = 0x47;
/// USER1 (group 3); USER2..USER4 follow.
pub const USER1: u8 = 0x48;
/// Registers of the board: 0x00..=0x4F.
pub const REGISTER_COUNT: usize = 0x50;

/// First and last group-3 (shadow-protected) register.
pub const GROUP3: core::ops::RangeInclusive<u8> = 0x40..=0x4B;

/// The value written to [`SHDW_CTRL`] to unlock the next group-3 write.
pub const SHADOW_UNLOCK: u8 = 0x35;
/// The value written to [`RESET`] to reset the board.
pub const RESET_MAGIC: u8 = 0xA5;

/// Register bytes of one measurement read starting at [`DEVICE_STATUS`]: status, GPAI, six
/// cells and two temperatures (pyBMS reads these in one go).
pub const MEASUREMENT_LEN: u8 = 0x13;
/// Register bytes from [`GPAI`] to the end of TS2 (collin80/TeslaBMS).
pub const VALUES_LEN: u8 = 0x12;
/// Cells per board.
pub const CELLS: usize = 6;
/// Thermistors per board.
pub const THERMISTORS: usize = 2;

/// Group-3 values the boards come out of reset with (read back from real boards):
/// 6 cells, GPAI = VBAT, COV 4.45 V / 100 ms, CUV 1.50 V / 100 ms, OT 65 °C / 2.55 s.
pub const GROUP3_RESET: [u8; 8] = [0x10, 0x80, 0x31, 0x81, 0x08, 0x81, 0x66, 0xFF];

/// DEVICE_STATUS bits.
pub mod status {
    /// A valid address has been assigned.
    pub const ADDR_RQST: u8 = 0x80;
    /// Some FAULT_STATUS bit is set.
    pub const FAULT: u8 = 0x40;
    /// Some ALERT_STATUS bit is set.
    pub const ALERT: u8 = 0x20;
    /// A single-bit EPROM error was corrected.
    pub const ECC_COR: u8 = 0x08;
    /// VBAT below under-voltage lockout.
    pub const UVLO: u8 = 0x04;
    /// The balance timer runs.
    pub const CBT: u8 = 0x02;
    /// Conversion data ready.
    pub const DRDY: u8 = 0x01;
}

/// ALERT_STATUS bits.
pub mod alert {
    /// Over temperature on TS1.
    pub const OT1: u8 = 0x01;
    /// Over temperature on TS2.
    pub const OT2: u8 = 0x02;
    /// Sleep mode.
    pub const SLEEP: u8 = 0x04;
    /// Die thermal shutdown.
    pub const TSD: u8 = 0x08;
    /// Test alert forced by the host.
    pub const FORCE: u8 = 0x10;
    /// Uncorrectable EPROM error.
    pub const ECC_ERR: u8 = 0x20;
    /// Group-3 parity error.
    pub const PARITY: u8 = 0x40;
    /// Address not yet registered (set after reset).
    pub const AR: u8 = 0x80;
}

/// FAULT_STATUS bits.
pub mod fault {
    /// Cell over voltage (COV_FAULT says which).
    pub const COV: u8 = 0x01;
    /// Cell under voltage (CUV_FAULT says which).
    pub const CUV: u8 = 0x02;
    /// A packet with a bad or missing CRC was received.
    pub const CRC: u8 = 0x04;
    /// Power-on or software reset.
    pub const POR: u8 = 0x08;
    /// Test fault forced by the host.
    pub const FORCE: u8 = 0x10;
    /// Internal register consistency check failed.
    pub const I_FAULT: u8 = 0x20;
}

/// ADC_CONTROL the masters write: cells 1..6, GPAI, TS1, TS2, ADC powered on demand.
pub const ADC_CONTROL_ALL: u8 = 0x3D;
/// IO_CONTROL the masters write before converting: both thermistor biases on.
pub const IO_CONTROL_BIAS: u8 = 0x03;
/// IO_CONTROL bit that puts the board to sleep.
pub const IO_CONTROL_SLEEP: u8 = 0x04;
/// CB_TIME bit 7: the count is in minutes (else seconds).
pub const CB_TIME_MINUTES: u8 = 0x80;
