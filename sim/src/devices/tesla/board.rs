//! One module board: the bq76PL536A register file 0x00..=0x4F with its reset values, latched
//! alerts and faults, conversions, the balance outputs and their timer, sleep, the shadow
//! unlock of the group-3 registers, and the warming of the board by its balance resistors
//! (`shared/protocols.md` §1.6–1.7, §1.9).

use cellwarden_core::proto::tesla::frame::BROADCAST;
use cellwarden_core::proto::tesla::regs::{self, alert, fault, status};
use cellwarden_core::{Duration, Instant};

use super::ThermistorConstants;
use super::analog::{ThermistorCache, brick_raw, cell_raw};
use super::faults::Converter;
use super::protector::{Protector, Settings};

/// One board. The ring owns the boards; tests and reports read them through
/// [`Ring::board`](super::Ring::board).
#[derive(Clone, Debug)]
pub struct Board {
    /// The stored registers. DEVICE_STATUS, SHDW_CTRL, ADC_CONVERT and RESET are computed on
    /// read instead.
    file: [u8; regs::REGISTER_COUNT],
    address: u8,
    /// SHDW_CTRL was set to the unlock value by the last write this board executed.
    shadow_unlocked: bool,
    /// When the running balance timer ends.
    balance_until: Option<Instant>,
    protector: Protector,
    /// What the group-3 registers select, decoded after every write.
    settings: Settings,
    /// Comparators tripped now, as COV_FAULT, CUV_FAULT and ALERT_STATUS.OT1/OT2 bits: the
    /// conditions that re-set their latched bits at once when the master clears them.
    tripped_cov: u8,
    tripped_cuv: u8,
    tripped_ot: u8,
    /// Thermistor temperature rise from the bleed power, K, at `heated_to`. Physical, so a
    /// reset keeps it.
    rise_k: f64,
    heated_to: Instant,
    /// The steady-state rise the present bleed power drives towards, K. The warming is a
    /// first-order lag solved in closed form from `heated_to`, so it costs nothing while the
    /// power stays the same; the power is worked out again at each write to the board (every
    /// measurement cycle writes a conversion) and when the balance timer ends.
    heat_target_k: f64,
    heating: Heating,
    /// The inputs the comparators last sampled; `None` makes the next observation sample.
    /// Between changes of the inputs (and of the registers) a comparator can only change
    /// when its delay runs out, and the board observes that instant through its deadline.
    sampled: Option<([f64; regs::CELLS], [f64; regs::THERMISTORS])>,
    /// When a holding comparator trips, from the last sample and the registers.
    comparator_deadline: Option<Instant>,
    ts2: ThermistorConstants,
    /// A conversion was started and has not finished (a stalled converter): DRDY reads 0.
    converting: bool,
    /// The last step length the warming was settled over, µs, and the lag's share of it.
    last_share: (u64, f64),
    /// Per thermistor channel, the last conversion's result and where it holds.
    thermistor_cache: [ThermistorCache; regs::THERMISTORS],
}

impl Board {
    /// The board's address: 0 until one is assigned, after power-up and after a reset.
    pub fn address(&self) -> u8 {
        self.address
    }

    /// The register as a read returns it (registers past 0x4F read 0).
    pub fn register(&self, register: u8) -> u8 {
        match register {
            regs::DEVICE_STATUS => self.device_status(),
            regs::SHDW_CTRL if self.shadow_unlocked => regs::SHADOW_UNLOCK,
            regs::SHDW_CTRL | regs::ADC_CONVERT | regs::RESET => 0,
            r => self.file.get(usize::from(r)).copied().unwrap_or(0),
        }
    }

    /// The balance outputs switched on now (bit k = cell k + 1): CB_CTRL while the board is
    /// awake, nothing while it sleeps.
    pub fn balance_mask(&self) -> u8 {
        if self.asleep() { 0 } else { self.file[usize::from(regs::CB_CTRL)] }
    }

    /// When the running balance timer switches the outputs off.
    pub fn balance_deadline(&self) -> Option<Instant> {
        self.balance_until
    }

    /// IO_CONTROL.SLEEP is set.
    pub fn asleep(&self) -> bool {
        self.file[usize::from(regs::IO_CONTROL)] & regs::IO_CONTROL_SLEEP != 0
    }

    /// The board's thermistors read this much above the plant's sensor temperatures at `at`,
    /// K, with the bleed power held as it is (`at` before the last change: the rise then).
    pub fn temperature_rise_k(&self, at: Instant) -> f64 {
        self.rise_at(at)
    }
}

/// The values at a board's analogue inputs.
#[derive(Clone, Copy, Debug)]
pub(super) struct Inputs {
    pub cells_v: [f64; regs::CELLS],
    /// The plant's sensor temperatures, without the board's own rise.
    pub temps_c: [f64; regs::THERMISTORS],
    pub brick_v: f64,
}

/// The board's warming by its balance resistors.
#[derive(Clone, Copy, Debug)]
pub(super) struct Heating {
    pub bleed_ohm: f64,
    pub k_per_w: f64,
    pub tau_s: f64,
}

impl Board {
    /// A board as it comes out of power-up.
    pub(super) fn new(ts2: ThermistorConstants, heating: Heating) -> Board {
        let mut file = [0u8; regs::REGISTER_COUNT];
        file[usize::from(regs::ALERT_STATUS)] = alert::AR;
        file[usize::from(regs::FAULT_STATUS)] = fault::POR;
        let g3 = usize::from(regs::FUNCTION_CONFIG);
        file[g3..g3 + regs::GROUP3_RESET.len()].copy_from_slice(&regs::GROUP3_RESET);
        Board {
            file,
            address: 0,
            shadow_unlocked: false,
            balance_until: None,
            protector: Protector::default(),
            settings: Settings::new(&file),
            tripped_cov: 0,
            tripped_cuv: 0,
            tripped_ot: 0,
            rise_k: 0.0,
            heated_to: Instant::ZERO,
            heat_target_k: 0.0,
            heating,
            sampled: None,
            comparator_deadline: None,
            ts2,
            converting: false,
            last_share: (0, 0.0),
            thermistor_cache: [ThermistorCache::default(); regs::THERMISTORS],
        }
    }

    /// A software reset at `now`: everything but the physical temperature rise returns to
    /// power-up.
    pub(super) fn reset(&mut self, now: Instant) {
        self.settle_heat(now);
        *self = Board {
            rise_k: self.rise_k,
            heated_to: self.heated_to,
            ..Board::new(self.ts2, self.heating)
        };
    }

    /// A write with a bad CRC reached this board: flag it, do nothing else.
    pub(super) fn flag_crc(&mut self) {
        self.file[usize::from(regs::FAULT_STATUS)] |= fault::CRC;
    }

    /// IO_CONFIG bit 0: the board does not check CRCs and executes writes whatever their CRC.
    pub(super) fn crc_check_disabled(&self) -> bool {
        self.file[usize::from(regs::IO_CONFIG)] & 0x01 != 0
    }

    /// Executes a write of `value` to `register` at `now`. `converter` says whether a
    /// conversion request converts, is ignored (frozen) or never finishes (stalled). Returns
    /// whether the comparators must sample again (new thresholds or delays, or a reset).
    pub(super) fn write(
        &mut self,
        now: Instant,
        register: u8,
        value: u8,
        inputs: &Inputs,
        converter: Converter,
    ) -> bool {
        self.tick(now);
        // The warming so far belongs to the outputs as they were; a conversion reads it.
        self.settle_heat(now);
        self.write_register(now, register, value, inputs, converter);
        // The outputs, the thresholds or the delays may have changed.
        self.set_heat_target(&inputs.cells_v);
        let settings = Settings::new(&self.file);
        if settings != self.settings {
            self.settings = settings;
            self.sampled = None;
        }
        self.comparator_deadline = self.protector.next_deadline(&self.settings);
        self.sampled.is_none()
    }

    fn write_register(
        &mut self,
        now: Instant,
        register: u8,
        value: u8,
        inputs: &Inputs,
        converter: Converter,
    ) {
        // The unlock covers exactly the next write, whatever it is.
        let unlocked = core::mem::take(&mut self.shadow_unlocked);
        let at = usize::from(register);
        match register {
            regs::ALERT_STATUS | regs::FAULT_STATUS => {
                // The masters write 1 then 0; a 1 clears the bit, the 0 is then harmless.
                self.file[at] &= !value;
                if register == regs::FAULT_STATUS {
                    if value & fault::COV != 0 {
                        self.file[usize::from(regs::COV_FAULT)] = 0;
                    }
                    if value & fault::CUV != 0 {
                        self.file[usize::from(regs::CUV_FAULT)] = 0;
                    }
                }
                self.reassert();
            }
            regs::ADC_CONTROL => self.file[at] = value & 0x7F,
            regs::IO_CONTROL => {
                // GPIO_IN (bit 5) is an input; with nothing connected it reads 0.
                self.file[at] = value & !0x20;
                self.reassert();
            }
            regs::CB_CTRL => self.start_balancing(now, value & 0x3F),
            regs::CB_TIME => self.file[at] = value & 0xBF,
            regs::ADC_CONVERT if value & 0x01 != 0 && !self.asleep() => match converter {
                Converter::Working => {
                    self.converting = false;
                    self.convert(inputs);
                }
                Converter::Frozen => {}
                Converter::Stalled => self.converting = true,
            },
            regs::SHDW_CTRL => self.shadow_unlocked = value == regs::SHADOW_UNLOCK,
            regs::ADDRESS_CONTROL => self.set_address(value & 0x3F),
            regs::RESET if value == regs::RESET_MAGIC => self.reset(now),
            regs::TEST_SELECT | regs::E_EN => self.file[at] = value,
            r if regs::GROUP3.contains(&r) && unlocked => self.file[at] = value,
            _ => {}
        }
    }

    /// Switches the timer's expired outputs off.
    pub(super) fn tick(&mut self, now: Instant) {
        if let Some(until) = self.balance_until.filter(|until| now >= *until) {
            // The outputs were on up to that moment, and off since.
            self.settle_heat(until);
            self.stop_balancing();
            self.heat_target_k = 0.0;
        }
    }

    /// Brings the board to `now` with the inputs at `now`: expires the balance timer, and
    /// feeds the comparators when the inputs changed since their last sample (or a write or a
    /// comparator's delay asks for one). Cheap otherwise. The comparators see the warming as
    /// the board's last write left it (each measurement cycle converts, so at most one scan
    /// old).
    pub(super) fn observe(&mut self, now: Instant, inputs: &Inputs) {
        self.tick(now);
        let seen = (inputs.cells_v, inputs.temps_c);
        let due = self.comparator_deadline.is_some_and(|d| d <= now);
        if self.sampled != Some(seen) || due {
            let temps = inputs.temps_c.map(|t| t + self.rise_k);
            let trips = self.protector.evaluate(now, &self.settings, &inputs.cells_v, &temps);
            self.tripped_cov = trips.cov;
            self.tripped_cuv = trips.cuv;
            self.tripped_ot = trips.ot;
            self.sampled = Some(seen);
            self.comparator_deadline = self.protector.next_deadline(&self.settings);
        }
        self.reassert();
    }

    /// The next instant at which the board changes by itself: its balance timer ends or a
    /// comparator's delay runs out.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        match (self.balance_until, self.comparator_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Writes each cell's bleed current (V / R for a cell whose output is on, else 0) into
    /// `out`, as far as both slices reach.
    pub(super) fn bleed_currents_a(&self, cells_v: &[f64], bleed_ohm: f64, out: &mut [f64]) {
        let mask = self.balance_mask();
        for (k, (v, i)) in cells_v.iter().zip(out.iter_mut()).enumerate() {
            *i = if mask & (1 << k) != 0 { bleed_current(*v, bleed_ohm) } else { 0.0 };
        }
    }

    fn device_status(&self) -> u8 {
        // Conversions complete at once, unless one has stalled.
        let mut s = if self.converting { 0 } else { status::DRDY };
        if self.address != 0 {
            s |= status::ADDR_RQST;
        }
        if self.file[usize::from(regs::FAULT_STATUS)] != 0 {
            s |= status::FAULT;
        }
        if self.file[usize::from(regs::ALERT_STATUS)] != 0 {
            s |= status::ALERT;
        }
        if self.balance_until.is_some() {
            s |= status::CBT;
        }
        s
    }

    /// Re-sets the latched bits whose conditions are present now.
    fn reassert(&mut self) {
        let mut alerts = self.tripped_ot & (alert::OT1 | alert::OT2);
        if self.asleep() {
            alerts |= alert::SLEEP;
        }
        if self.address == 0 {
            alerts |= alert::AR;
        }
        let mut faults = 0;
        if self.tripped_cov != 0 {
            faults |= fault::COV;
        }
        if self.tripped_cuv != 0 {
            faults |= fault::CUV;
        }
        self.file[usize::from(regs::ALERT_STATUS)] |= alerts;
        self.file[usize::from(regs::FAULT_STATUS)] |= faults;
        self.file[usize::from(regs::COV_FAULT)] |= self.tripped_cov;
        self.file[usize::from(regs::CUV_FAULT)] |= self.tripped_cuv;
    }

    fn set_address(&mut self, address: u8) {
        match address {
            // The broadcast address is not one a board can take.
            BROADCAST => {}
            0 => {
                self.address = 0;
                self.file[usize::from(regs::ADDRESS_CONTROL)] = 0;
                self.reassert();
            }
            a => {
                self.address = a;
                self.file[usize::from(regs::ADDRESS_CONTROL)] = a | 0x80;
            }
        }
    }

    /// CB_CTRL written: a non-zero mask (re)starts the timer from CB_TIME, zero stops it.
    fn start_balancing(&mut self, now: Instant, mask: u8) {
        let duration = balance_duration(self.file[usize::from(regs::CB_TIME)]);
        if mask == 0 || duration == Duration::ZERO {
            self.stop_balancing();
            return;
        }
        self.file[usize::from(regs::CB_CTRL)] = mask;
        self.balance_until = Some(now.saturating_add(duration));
    }

    fn stop_balancing(&mut self) {
        self.file[usize::from(regs::CB_CTRL)] = 0;
        self.balance_until = None;
    }

    /// Latches the inputs into the result registers, as ADC_CONTROL selects them.
    fn convert(&mut self, inputs: &Inputs) {
        let control = self.file[usize::from(regs::ADC_CONTROL)];
        let io = self.file[usize::from(regs::IO_CONTROL)];
        // CELL_SEL holds the number of cells minus one; 6 and 7 are beyond the six inputs.
        let cells = usize::from(control & 0x07).min(regs::CELLS - 1) + 1;
        for (k, v) in inputs.cells_v.iter().take(cells).enumerate() {
            self.set_result(regs::VCELL1 + 2 * k as u8, cell_raw(*v));
        }
        if control & 0x08 != 0 {
            // FUNCTION_CONFIG bit 4 routes the module voltage to GPAI; the GPAI pin itself is
            // not connected on the Tesla board, so it reads 0.
            let vbat = self.file[usize::from(regs::FUNCTION_CONFIG)] & 0x10 != 0;
            self.set_result(regs::GPAI, if vbat { brick_raw(inputs.brick_v) } else { 0 });
        }
        let channels = [
            (0x10, 0x01, regs::TEMPERATURE1, ThermistorConstants::PyBms),
            (0x20, 0x02, regs::TEMPERATURE2, self.ts2),
        ];
        for (k, (enable, bias, register, constants)) in channels.into_iter().enumerate() {
            if control & enable != 0 {
                // Without its bias the divider carries no voltage and the channel reads 0.
                let celsius = inputs.temps_c[k] + self.rise_k;
                let raw = if io & bias != 0 {
                    self.thermistor_cache[k].raw(celsius, constants)
                } else {
                    0
                };
                self.set_result(register, raw);
            }
        }
    }

    fn set_result(&mut self, register: u8, raw: u16) {
        let at = usize::from(register);
        self.file[at..at + 2].copy_from_slice(&raw.to_be_bytes());
    }

    /// The warming at `at`: first-order towards the present target from `heated_to`, in
    /// closed form (`at` not after `heated_to`: the rise then).
    fn rise_at(&self, at: Instant) -> f64 {
        self.rise_with(at, |dt_us| self.heating.share(dt_us))
    }

    /// [`Self::rise_at`] with `share` giving the lag's share of a step of so many µs.
    fn rise_with(&self, at: Instant, share: impl FnOnce(u64) -> f64) -> f64 {
        if (self.heat_target_k == 0.0 && self.rise_k == 0.0) || at <= self.heated_to {
            return self.rise_k;
        }
        let share = share(at.saturating_since(self.heated_to).as_micros());
        let next = self.rise_k + (self.heat_target_k - self.rise_k) * share;
        // A NaN input must not stick in the state for ever.
        if next.is_finite() { next } else { 0.0 }
    }

    /// Moves the stored rise to `at`, before the power changes or a conversion reads it. The
    /// board is settled at every conversion, so the steps are mostly one scan period long: the
    /// share of the last step length is kept instead of taking an `exp` again.
    fn settle_heat(&mut self, at: Instant) {
        let mut last = self.last_share;
        self.rise_k = self.rise_with(at, |dt_us| {
            if last.0 != dt_us {
                last = (dt_us, self.heating.share(dt_us));
            }
            last.1
        });
        self.last_share = last;
        self.heated_to = self.heated_to.max(at);
    }

    /// The target of the warming for the present outputs and these cell voltages. It holds
    /// until the board's next write or the end of its balance timer; the cells move far less
    /// in between than the power would notice.
    fn set_heat_target(&mut self, cells_v: &[f64; regs::CELLS]) {
        let mask = self.balance_mask();
        let ohms = self.heating.bleed_ohm;
        let power_w: f64 = (0..regs::CELLS)
            .filter(|k| mask & (1 << k) != 0)
            .map(|k| bleed_current(cells_v[k], ohms) * cells_v[k].max(0.0))
            .sum();
        let target = self.heating.k_per_w * power_w;
        self.heat_target_k = if target.is_finite() { target } else { 0.0 };
    }
}

impl Heating {
    /// The share of the way to its target the warming goes in `dt_us` µs.
    fn share(&self, dt_us: u64) -> f64 {
        let dt_s = dt_us as f64 / 1e6;
        if self.tau_s > 0.0 { 1.0 - libm::exp(-dt_s / self.tau_s) } else { 1.0 }
    }
}

/// CB_TIME's duration: bits 5..0, in minutes when bit 7 is set, else seconds.
fn balance_duration(cb_time: u8) -> Duration {
    let count = u64::from(cb_time & 0x3F);
    if cb_time & regs::CB_TIME_MINUTES != 0 {
        Duration::from_secs(count * 60)
    } else {
        Duration::from_secs(count)
    }
}

/// The current through a balance resistor across a cell at `volts` (a cell cannot push
/// current backwards through the FET, and a broken input reads no current).
fn bleed_current(volts: f64, ohms: f64) -> f64 {
    let i = volts.max(0.0) / ohms;
    if i.is_finite() { i } else { 0.0 }
}
