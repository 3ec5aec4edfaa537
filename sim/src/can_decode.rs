//! `cellwarden-sim can-decode`: a candump log read through the core's CAN decoders, frame by
//! frame, and what an inverter's reader makes of each interface at the end.

use std::io::{self, BufRead, Write};
use std::path::PathBuf;

use cellwarden_core::proto::byd_can::{self, Field, IdentPart};
use cellwarden_core::proto::can::Frame;
use cellwarden_core::proto::lv::{self, KeepAlive, TextId};
use cellwarden_core::{Alarm, AlarmSet};
use cellwarden_core::{BatteryView, Duration, Instant};
use cellwarden_io::can::candump::{Replay, ReplayError, format_line};

/// Decode a candump log with the core's low-voltage (Pylontech/SMA/Victron) and BYD CAN
/// decoders.
///
/// Reads a log in `candump -l` format (`(SECONDS.MICROSECONDS) IFACE ID#HEX`, one frame a line;
/// blank lines and `#` comments are skipped), a capture from a real bus or a `can.log` from
/// `run --candump`. Prints one line per frame: its time since the log's first frame, the
/// interface, the frame and what it says, or why it does not decode. A line that is not a
/// candump line is reported with its number and counted. At the end, per interface, the battery
/// as an inverter's reader assembled it from the frames (limits, SoC, SoH, measurements,
/// cells, alarms), and the counts. Exit code 0 when the log was read, also when frames did not
/// decode; 2 when the file cannot be read.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    cellwarden-sim can-decode scenarios/data/pylontech_stack.candump\n  \
    cellwarden-sim run scenarios/can_two_inverters.toml --candump --out /tmp/two\n  \
    cellwarden-sim can-decode /tmp/two/can.log\n  \
    candump -l can0   # writes candump-DATE.log; then:\n  \
    cellwarden-sim can-decode candump-2025-01-31_120000.log --protocol lv")]
pub struct CanDecodeArgs {
    /// The candump log.
    #[arg(value_name = "LOG")]
    log: PathBuf,
    /// The decoder: `lv` (0x305-0x382: Pylontech, SMA, Victron), `byd` (BYD HVS), or `auto`,
    /// which sends BYD identifiers (0x091, 0x0D1, 0x110, 0x111, 0x150, 0x151, 0x190, 0x191,
    /// 0x1D0, 0x210, 0x250, 0x290, 0x2D0, 0x3D0) to the BYD decoder and the rest to lv.
    #[arg(long, value_enum, default_value_t = Protocol::Auto)]
    protocol: Protocol,
}

/// Which decoder reads which frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// Every frame through the low-voltage decoder.
    Lv,
    /// Every frame through the BYD decoder.
    Byd,
    /// By identifier: BYD's to the BYD decoder, the rest to lv.
    Auto,
}

/// The identifiers `--protocol auto` gives to the BYD decoder: every one BYD defines, the
/// battery's and the inverter's.
pub const BYD_IDS: [u16; 14] = byd_can::id::ALL;

/// How old, before an interface's last frame, a frame may be and still count in its summary.
/// Generous: the slowest BYD frames come every 60 s, the low-voltage ones about every second.
pub const VIEW_MAX_AGE: Duration = Duration::from_secs(60);

/// Interfaces summarised at the end; frames on further interfaces are decoded and printed but
/// not assembled.
pub const MAX_INTERFACES: usize = 64;

/// Runs `can-decode`; the error says why the log could not be read.
pub fn can_decode(args: &CanDecodeArgs) -> Result<(), String> {
    let replay = Replay::open(&args.log).map_err(|err| err.to_string())?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let read = decode_log(replay, args.protocol, &mut out).and_then(|read| {
        out.flush()?;
        Ok(read)
    });
    match read {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(format!("{}: {err}", args.log.display())),
        // A reader of the output that went away (`| head`) is no failure of the log.
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(err) => Err(format!("standard output: {err}")),
    }
}

/// Decodes every frame of `replay` onto `out` and ends with the summary. The outer error is
/// one writing `out`; the inner one a failure reading the log, after which the summary covers
/// what was read.
pub fn decode_log<R: BufRead>(
    replay: Replay<R>,
    protocol: Protocol,
    out: &mut dyn Write,
) -> io::Result<Result<(), String>> {
    let mut buses: Vec<Bus> = Vec::new();
    let mut totals = Totals::default();
    let mut failure = None;
    for item in replay {
        let replayed = match item {
            Ok(replayed) => replayed,
            Err(ReplayError::Io(err)) => {
                failure = Some(format!("cannot read the log: {err}"));
                break;
            }
            Err(err) => {
                totals.bad_lines += 1;
                writeln!(out, "skipped {err}")?;
                continue;
            }
        };
        totals.frames += 1;
        let at = Instant::ZERO + replayed.offset;
        let micros = replayed.offset.as_micros();
        // The remainder of a division by one million fits u32.
        let stamp = format_line(
            micros / 1_000_000,
            (micros % 1_000_000) as u32,
            &replayed.iface,
            &replayed.frame,
        );
        let decoder = pick(protocol, &replayed.frame);
        let words = match decoder {
            Decoder::Lv => lv::decode(&replayed.frame).map(lv_words).map_err(lv_error),
            Decoder::Byd => byd_can::decode(&replayed.frame).map(byd_words).map_err(byd_error),
        };
        let name = decoder.name();
        match &words {
            Ok(words) => writeln!(out, "{stamp}  {name}: {words}")?,
            Err(why) => writeln!(out, "{stamp}  {name} error: {why}")?,
        }
        totals.errors += u64::from(words.is_err());

        let index = match buses.iter().position(|b| b.name == replayed.iface) {
            Some(index) => Some(index),
            None if buses.len() < MAX_INTERFACES => {
                buses.push(Bus::new(replayed.iface));
                Some(buses.len() - 1)
            }
            None => None,
        };
        match index.and_then(|i| buses.get_mut(i)) {
            Some(bus) => bus.take(at, decoder, &replayed.frame, words.is_ok()),
            None => totals.untracked += 1,
        }
    }

    writeln!(out)?;
    for bus in &buses {
        bus.summarise(out)?;
    }
    writeln!(
        out,
        "{}, {} {}: {} decoded, {} decode {}; {} bad log {}",
        count(buses.len() as u64, "interface", "interfaces"),
        totals.frames,
        if totals.frames == 1 { "frame" } else { "frames" },
        totals.frames - totals.errors,
        totals.errors,
        if totals.errors == 1 { "error" } else { "errors" },
        totals.bad_lines,
        if totals.bad_lines == 1 { "line" } else { "lines" },
    )?;
    if totals.untracked > 0 {
        writeln!(
            out,
            "{} on interfaces past the first {MAX_INTERFACES} were decoded but not summarised",
            count(totals.untracked, "frame", "frames")
        )?;
    }
    Ok(failure.map_or(Ok(()), Err))
}

/// The decoder that reads `frame` under `protocol`.
pub fn pick(protocol: Protocol, frame: &Frame) -> Decoder {
    match protocol {
        Protocol::Lv => Decoder::Lv,
        Protocol::Byd => Decoder::Byd,
        Protocol::Auto => {
            let byd = !frame.is_extended()
                && u16::try_from(frame.id()).is_ok_and(|id| BYD_IDS.contains(&id));
            if byd { Decoder::Byd } else { Decoder::Lv }
        }
    }
}

/// One of the core's two decoders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoder {
    /// [`lv::decode`].
    Lv,
    /// [`byd_can::decode`].
    Byd,
}

impl Decoder {
    /// Its short name in the output.
    pub const fn name(self) -> &'static str {
        match self {
            Decoder::Lv => "lv",
            Decoder::Byd => "byd",
        }
    }
}

/// Counts over the whole log.
#[derive(Debug, Default)]
struct Totals {
    frames: u64,
    errors: u64,
    bad_lines: u64,
    untracked: u64,
}

/// One interface: a reader per protocol that had frames on it, and counts.
#[derive(Debug)]
struct Bus {
    name: String,
    lv: Option<lv::Reader>,
    byd: Option<byd_can::Reader>,
    /// The latest frame time seen on it.
    last: Instant,
    frames: u64,
    decoded: u64,
}

impl Bus {
    fn new(name: String) -> Bus {
        Bus { name, lv: None, byd: None, last: Instant::ZERO, frames: 0, decoded: 0 }
    }

    fn take(&mut self, at: Instant, decoder: Decoder, frame: &Frame, decoded: bool) {
        self.frames += 1;
        self.decoded += u64::from(decoded);
        self.last = self.last.max(at);
        match decoder {
            Decoder::Lv => self.lv.get_or_insert_with(lv::Reader::new).handle_frame(at, frame),
            Decoder::Byd => {
                self.byd.get_or_insert_with(byd_can::Reader::new).handle_frame(at, frame)
            }
        }
    }

    fn summarise(&self, out: &mut dyn Write) -> io::Result<()> {
        let errors = self.frames - self.decoded;
        writeln!(
            out,
            "{}: {}, {} decoded, {} decode {}",
            self.name,
            count(self.frames, "frame", "frames"),
            self.decoded,
            errors,
            if errors == 1 { "error" } else { "errors" }
        )?;
        let age = format!(
            "latest frames, each at most {} s before the last one at {}",
            VIEW_MAX_AGE.as_micros() / 1_000_000,
            seconds(self.last)
        );
        if let Some(reader) = &self.lv {
            match reader.view(self.last, VIEW_MAX_AGE) {
                Some(view) => {
                    writeln!(out, "  low-voltage battery view ({age}):")?;
                    view_lines(&view, out)?;
                }
                None => writeln!(
                    out,
                    "  low-voltage: no complete battery view; the reader needs 0x351, 0x355, \
                     0x356 and 0x359 or 0x35A ({age})"
                )?,
            }
            if let Some(name) = reader.name() {
                writeln!(out, "    name       \"{}\"", name.as_str())?;
            }
        }
        if let Some(reader) = &self.byd {
            match reader.view(self.last, VIEW_MAX_AGE) {
                Some(view) => {
                    writeln!(out, "  BYD battery view ({age}):")?;
                    view_lines(&view, out)?;
                }
                None => writeln!(
                    out,
                    "  BYD: no complete battery view; the reader needs 0x110, 0x150 and 0x1D0 \
                     ({age})"
                )?,
            }
            let mut identity = Vec::new();
            if let Some(vendor) = reader.vendor() {
                identity.push(format!("vendor \"{vendor}\""));
            }
            if let Some(model) = reader.model() {
                identity.push(format!("model \"{model}\""));
            }
            if let Some([major, minor]) = reader.firmware() {
                identity.push(format!("firmware {major:02X} {minor:02X}"));
            }
            if let Some(wh) = reader.capacity_wh() {
                identity.push(format!("capacity {}", kwh(u64::from(wh))));
            }
            if !identity.is_empty() {
                writeln!(out, "    identity   {}", identity.join(", "))?;
            }
        }
        Ok(())
    }
}

/// A [`BatteryView`], one aspect a line.
fn view_lines(view: &BatteryView, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "    limits     CVL {}, CCL {}, DCL {}, DVL {}",
        volts(view.charge_voltage_mv.0),
        amps(view.charge_limit_ma.0),
        amps(view.discharge_limit_ma.0),
        volts(view.discharge_voltage_mv.0)
    )?;
    writeln!(
        out,
        "    state      SoC {}, SoH {}, {}, {}, {}",
        permille(view.soc.0),
        permille(view.soh.0),
        volts(view.voltage_mv.0),
        current(view.current_ma.0),
        celsius(view.temperature_dc.0)
    )?;
    let cell_mv = view.cell_mv.map_or("voltages not sent".to_owned(), |(min, max)| {
        format!("min {} mV, max {} mV", min.0, max.0)
    });
    let cell_dc = view.cell_dc.map_or("temperatures not sent".to_owned(), |(min, max)| {
        format!("Tmin {}, Tmax {}", celsius(min.0), celsius(max.0))
    });
    writeln!(out, "    cells      {cell_mv}, {cell_dc}")?;
    // The view holds 0 for what its frames did not say.
    let capacity = match view.capacity_mah {
        0 => "capacity unknown".to_owned(),
        mah => format!("capacity {}", amp_hours(u64::from(mah))),
    };
    let modules = match view.modules {
        0 => "module count unknown".to_owned(),
        n => count(u64::from(n), "module", "modules"),
    };
    let mut requests = vec![
        if view.charge_enable { "charge enabled" } else { "charge disabled" },
        if view.discharge_enable { "discharge enabled" } else { "discharge disabled" },
    ];
    if view.force_charge {
        requests.push("force charge requested");
    }
    if view.full_charge {
        requests.push("full charge requested");
    }
    writeln!(out, "    battery    {modules}, {capacity}; {}", requests.join(", "))?;
    writeln!(
        out,
        "    alarms     {}; warnings {}",
        alarm_list(view.alarms),
        alarm_list(view.warnings)
    )
}

/// A low-voltage message in words.
fn lv_words(message: lv::Message) -> String {
    use lv::Message as M;
    match message {
        M::Limits(l) => format!(
            "limits: CVL {}, CCL {}, DCL {}, DVL {}",
            volts(l.charge_voltage_mv.0),
            amps(l.charge_limit_ma.0),
            amps(l.discharge_limit_ma.0),
            l.discharge_voltage_mv.map_or("not sent".to_owned(), |v| volts(v.0))
        ),
        M::Soc(s) => format!(
            "SoC {}, SoH {}{}",
            permille(s.soc.0),
            permille(s.soh.0),
            if s.high_resolution { " (high-resolution SoC in bytes 4-5)" } else { "" }
        ),
        M::Measurements(m) => format!(
            "battery {}, {}, {}",
            volts(m.voltage_mv.0),
            current(m.current_ma.0),
            celsius(m.temperature_dc.0)
        ),
        M::PylonFlags(f) => format!(
            "Pylontech flags: {}, protection: {}, alarm: {}",
            count(u64::from(f.modules), "module", "modules"),
            alarm_list(f.alarms),
            alarm_list(f.warnings)
        ),
        M::Alarms(a) => {
            let reported = a.alarms.union(a.alarms_ok).iter().count();
            format!(
                "alarms {}; warnings {} ({reported} of {} alarm fields reported)",
                alarm_list(a.alarms),
                alarm_list(a.warnings),
                Alarm::ALL.len()
            )
        }
        M::Events(e) => format!("SMA events {}", hex(&e.0)),
        M::Requests(r) => {
            let mut said = vec![
                if r.charge_enable { "charge enabled" } else { "charge disabled" },
                if r.discharge_enable { "discharge enabled" } else { "discharge disabled" },
            ];
            if r.force_charge_1 {
                said.push("force charge I");
            }
            if r.force_charge_2 {
                said.push("force charge II");
            }
            if r.full_charge {
                said.push("full charge");
            }
            format!("requests: {}", said.join(", "))
        }
        M::Name(n) => format!("name \"{}\"", n.as_str()),
        M::Info(i) => format!(
            "info: chemistry \"{}\", firmware {}, capacity {}, hardware {}",
            String::from_utf8_lossy(&i.chemistry).trim_end_matches('\0'),
            hex(&i.firmware),
            amp_hours(u64::from(i.capacity_mah)),
            hex(&i.hardware)
        ),
        M::Text(id, n) => format!("{} \"{}\"", text_name(id), n.as_str()),
        M::ModuleCounts(m) => format!(
            "modules: {} online, {} blocking charge, {} blocking discharge, {} offline",
            m.online, m.blocking_charge, m.blocking_discharge, m.offline
        ),
        M::CellExtremes(c) => format!(
            "cell min {} mV, max {} mV, Tmin {}, Tmax {}",
            c.min_mv.0,
            c.max_mv.0,
            celsius(c.min_dc.0),
            celsius(c.max_dc.0)
        ),
        M::Energy(e) => {
            format!("energy {} charged, {} discharged", kwh(e.charged_wh), kwh(e.discharged_wh))
        }
        M::Capacity(c) => format!("capacity {}", amp_hours(u64::from(c.capacity_mah))),
        M::KeepAlive(KeepAlive::Ack305) => "inverter keep-alive".to_owned(),
        M::KeepAlive(KeepAlive::Sma306) => "inverter status (SMA) or keep-alive".to_owned(),
        M::KeepAlive(KeepAlive::VictronGx307) => "Victron GX identification".to_owned(),
    }
}

/// What a low-voltage text frame names.
fn text_name(id: TextId) -> &'static str {
    match id {
        TextId::BmsName1 => "BMS name, part 1,",
        TextId::BmsName2 => "BMS name, part 2,",
        TextId::MinVoltageCell => "lowest-voltage cell",
        TextId::MaxVoltageCell => "highest-voltage cell",
        TextId::MinTemperatureCell => "coldest cell",
        TextId::MaxTemperatureCell => "hottest cell",
        TextId::ProductName => "product name",
    }
}

/// Why a frame is not a low-voltage frame, in words.
fn lv_error(error: lv::DecodeError) -> String {
    use lv::DecodeError as E;
    match error {
        E::Extended => "a 29-bit identifier; the protocol uses 11-bit ones".to_owned(),
        E::UnknownId(id) => format!("identifier {id:03X} is not one of the protocol's"),
        E::TooShort { id, len } => {
            format!("{id:03X} with {len} data bytes is too short for its fields")
        }
        E::OutOfRange { id } => format!("{id:03X} carries a value outside its physical range"),
        E::NotAscii { id } => format!("{id:03X} carries text that is not printable ASCII"),
        E::NoMarker => "359 without its \"PN\" marker in bytes 5-6".to_owned(),
    }
}

/// A BYD message in words.
fn byd_words(message: byd_can::Message) -> String {
    use byd_can::Message as M;
    match message {
        M::Limits {
            charge_voltage_mv,
            discharge_voltage_mv,
            discharge_limit_ma,
            charge_limit_ma,
        } => {
            format!(
                "limits: CVL {}, CCL {}, DCL {}, DVL {}",
                volts(charge_voltage_mv.0),
                amps(charge_limit_ma.0),
                amps(discharge_limit_ma.0),
                volts(discharge_voltage_mv.0)
            )
        }
        M::States { soc_pptt, soh_pptt, remaining_mah, capacity_mah } => format!(
            "SoC {}, SoH {}, remaining {}, full {}",
            hundredths_pct(soc_pptt),
            hundredths_pct(soh_pptt),
            amp_hours(u64::from(remaining_mah)),
            amp_hours(u64::from(capacity_mah))
        ),
        M::BatteryInfo { voltage_mv, current_ma, temperature_dc, unknown } => format!(
            "battery {}, {}, {} (bytes 6-7 {})",
            volts(voltage_mv.0),
            current(current_ma.0),
            celsius(temperature_dc.0),
            hex(&unknown)
        ),
        M::CellInfo { cell_dc_max, cell_dc_min, .. } => {
            format!("cell Tmax {}, Tmin {}", celsius(cell_dc_max.0), celsius(cell_dc_min.0))
        }
        M::Alarm(bytes) => format!("alarm frame (layout unknown) {}", hex(&bytes)),
        M::Ident { part } => match part {
            IdentPart::Product { firmware, capacity_wh, .. } => format!(
                "identification: firmware {}, capacity {}",
                hex(&firmware),
                kwh(u64::from(capacity_wh))
            ),
            IdentPart::Opaque(bytes) => {
                format!("identification: constant (meaning unknown) {}", hex(&bytes))
            }
            IdentPart::Vendor { index, text } => {
                format!("identification: vendor name, fragment {index}, \"{}\"", ascii(&text))
            }
            IdentPart::Model { index, text } => {
                format!("identification: model name, fragment {index}, \"{}\"", ascii(&text))
            }
        },
        M::IdentifyRequest => "inverter asks the battery to identify itself".to_owned(),
        M::InverterBrand { brand } => format!("inverter brand \"{}\"", ascii(&brand)),
        M::InverterBattery { voltage_mv, current_ma, temperature_dc } => format!(
            "inverter measures {}, {}, {}",
            volts(voltage_mv.0),
            current(current_ma.0),
            celsius(temperature_dc.0)
        ),
        M::InverterSoc(soc) => format!("inverter sees SoC {}", permille(soc.0)),
        M::InverterTime(seconds) => format!("inverter clock {seconds} s"),
        M::InverterStatus(bytes) => format!("inverter status (layout unknown) {}", hex(&bytes)),
    }
}

/// Why a frame is not a BYD frame, in words.
fn byd_error(error: byd_can::DecodeError) -> String {
    use byd_can::DecodeError as E;
    match error {
        E::Extended => "a 29-bit identifier; the protocol uses 11-bit ones".to_owned(),
        E::UnknownId(id) => format!("identifier {id:03X} is not one of the protocol's"),
        E::WrongLength { id, len } => {
            format!("{id:03X} with {len} data bytes; every BYD frame has 8")
        }
        E::OutOfRange { id, field } => format!("{id:03X}: {}", field_words(field)),
    }
}

/// What is wrong with a BYD field.
fn field_words(field: Field) -> &'static str {
    match field {
        Field::VoltageLimits => "charge voltage limit below the discharge voltage limit",
        Field::ChargeLimit => "negative charge current limit",
        Field::DischargeLimit => "negative discharge current limit",
        Field::Soc => "state of charge above 100 %",
        Field::Soh => "state of health above 100 %",
        Field::RemainingCapacity => "more charge left than the full capacity",
        Field::Temperature => "temperature below absolute zero",
        Field::CellTemperatures => "highest cell temperature below the lowest",
        Field::Text => "a text byte that is not ASCII",
        Field::Request => "byte 0 is neither a request nor zero",
    }
}

/// `value / 10^digits` in decimal, trailing zeros of the fraction dropped down to `keep`.
fn fixed(value: i64, digits: u32, keep: usize) -> String {
    let scale = 10u64.pow(digits);
    let sign = if value < 0 { "-" } else { "" };
    let magnitude = value.unsigned_abs();
    let mut fraction = format!("{:0width$}", magnitude % scale, width = digits as usize);
    while fraction.len() > keep && fraction.ends_with('0') {
        fraction.pop();
    }
    let whole = magnitude / scale;
    if fraction.is_empty() { format!("{sign}{whole}") } else { format!("{sign}{whole}.{fraction}") }
}

fn volts(mv: i32) -> String {
    format!("{} V", fixed(i64::from(mv), 3, 1))
}

fn amps(ma: i32) -> String {
    format!("{} A", fixed(i64::from(ma), 3, 1))
}

/// A battery current with its direction.
fn current(ma: i32) -> String {
    let direction = match ma.signum() {
        1 => " (charging)",
        -1 => " (discharging)",
        _ => "",
    };
    format!("{}{direction}", amps(ma))
}

fn celsius(dc: i32) -> String {
    format!("{} °C", fixed(i64::from(dc), 1, 1))
}

fn permille(p: u16) -> String {
    format!("{} %", fixed(i64::from(p), 1, 0))
}

/// Hundredths of a percent, both decimals shown: the wire's resolution.
fn hundredths_pct(pptt: u16) -> String {
    format!("{} %", fixed(i64::from(pptt), 2, 2))
}

fn amp_hours(mah: u64) -> String {
    format!("{} Ah", fixed(i64::try_from(mah).unwrap_or(i64::MAX), 3, 1))
}

fn kwh(wh: u64) -> String {
    format!("{} kWh", fixed(i64::try_from(wh).unwrap_or(i64::MAX), 3, 1))
}

/// An instant as seconds with six decimals.
fn seconds(at: Instant) -> String {
    let micros = at.saturating_since(Instant::ZERO).as_micros();
    format!("{}.{:06} s", micros / 1_000_000, micros % 1_000_000)
}

/// Bytes as upper-case hex pairs separated by spaces.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ")
}

/// NUL-padded ASCII text; anything else shown as `\xNN`.
fn ascii(bytes: &[u8]) -> String {
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    bytes[..end]
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02X}")
            }
        })
        .collect()
}

fn alarm_list(set: AlarmSet) -> String {
    if set.is_empty() {
        return "none".to_owned();
    }
    set.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
}

fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(log: &str, protocol: Protocol) -> String {
        let mut out = Vec::new();
        let replay = Replay::from_reader(log.as_bytes());
        decode_log(replay, protocol, &mut out).unwrap().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_keep_their_wire_resolution() {
        assert_eq!(volts(56_300), "56.3 V");
        assert_eq!(volts(52_910), "52.91 V");
        assert_eq!(volts(160_000), "160.0 V");
        assert_eq!(current(-80_100), "-80.1 A (discharging)");
        assert_eq!(current(0), "0.0 A");
        assert_eq!(celsius(-5), "-0.5 °C");
        assert_eq!(permille(800), "80 %");
        assert_eq!(permille(974), "97.4 %");
        assert_eq!(hundredths_pct(9740), "97.40 %");
        assert_eq!(amp_hours(24_300), "24.3 Ah");
    }

    #[test]
    fn auto_sends_byd_identifiers_to_byd_and_the_rest_to_lv() {
        let byd = Frame::standard(0x110, &[0; 8]).unwrap();
        let lv = Frame::standard(0x351, &[0; 8]).unwrap();
        let extended = Frame::new(0x110, true, &[0; 8]).unwrap();
        assert_eq!(pick(Protocol::Auto, &byd), Decoder::Byd);
        assert_eq!(pick(Protocol::Auto, &lv), Decoder::Lv);
        assert_eq!(pick(Protocol::Auto, &extended), Decoder::Lv);
        assert_eq!(pick(Protocol::Lv, &byd), Decoder::Lv);
        assert_eq!(pick(Protocol::Byd, &lv), Decoder::Byd);
    }

    #[test]
    fn a_byd_battery_of_the_worked_example() {
        let log = "(10.000000) can1 110#0920064001000100\n\
                   (10.100000) can1 150#260C271000F300FA\n\
                   (10.200000) can1 1D0#0849000000B40308\n\
                   (10.300000) can1 210#00BE00B400000000\n";
        let text = decoded(log, Protocol::Auto);
        assert!(text.contains("(0.000000) can1 110#0920064001000100  byd: limits: CVL 233.6 V"));
        assert!(text.contains("SoC 97.40 %, SoH 100.00 %, remaining 24.3 Ah, full 25.0 Ah"));
        assert!(text.contains("BYD battery view"), "{text}");
        assert!(text.contains("SoC 97.4 %, SoH 100 %, 212.1 V, 0.0 A, 18.0 °C"), "{text}");
        assert!(text.contains("can1: 4 frames, 4 decoded, 0 decode errors"), "{text}");
    }

    #[test]
    fn bad_lines_and_bad_frames_are_reported_and_counted() {
        let log = "(0.000000) can0 355#50\nnot a line\n(0.100000) can0 110#00\n";
        let text = decoded(log, Protocol::Auto);
        assert!(text.contains("lv error: 355 with 1 data bytes is too short"), "{text}");
        assert!(text.contains("skipped line 2: "), "{text}");
        assert!(text.contains("byd error: 110 with 1 data bytes; every BYD frame has 8"), "{text}");
        assert!(text.contains("can0: 2 frames, 0 decoded, 2 decode errors"), "{text}");
        assert!(text.contains("1 interface, 2 frames: 0 decoded, 2 decode errors; 1 bad log line"));
    }
}
