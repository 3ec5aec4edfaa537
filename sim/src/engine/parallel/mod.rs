//! The system engine: a parallel system in virtual time, every byte of it over emulated CAN.
//!
//! Packs (our own pack controller with its plant, and rack batteries whose emulated BMS speaks a
//! low-voltage CAN profile) share one DC bus. The core's [`Gateway`] reads the packs (our own
//! through [`Bms::battery_view`], the CAN packs from the frames they send), lets its combiner
//! decide which packs join, and tells every inverter its limits through that inverter's
//! protocol, on a CAN bus of its own; it turns connect and disconnect into our pack's
//! `Start`/`Stop` or a rack's relay. This engine only moves frames, time and commands between
//! the gateway and the emulated world. The emulated inverters decode those frames and draw
//! current inside the limits (or not, if a scenario says so).
//!
//! Time jumps from one instant where something happens to the next, as for a single pack: a
//! frame any device or publisher has to send, a measurement or deadline of our pack (and its
//! module boards' bytes, when it has them), the combiner's deadline, a timeline entry, a trace
//! row. At each instant the plants first catch up over the jump (the inverters' currents held
//! at what they drew at its start, split among the connected packs by their Thevenin
//! equivalents, so packs at different voltages share unevenly and circulate current, as they
//! do), then the buses and the core act.
//!
//! Architecture Invariant: nothing here decides anything about the battery. The combiner and
//! the pack controller decide; the emulated BMSes and inverters are the simulated world.

mod run;

use cellwarden_core::combiner::{
    CombinedReason, CombinerAction, DropReason, Implausible, PackPhase, Stage,
};
use cellwarden_core::gateway::{Gateway, GatewayConfig, InverterLink, PackLink};
use cellwarden_core::proto::can::Frame;
use cellwarden_core::proto::lv;
use cellwarden_core::proto::tesla::regs;
use cellwarden_core::{Bms, Duration, Instant};

use super::boards::Boards;
use super::controller::Controller;
use super::frontend::FrontEnd;
use crate::devices::can_bms::CanBms;
use crate::devices::inverter::InverterEmu;
use crate::plant::{Plant, Spread};
use crate::scenario::Scenario;
use crate::scenario::parallel::{CanPackProtocol, InverterProtocolName, Parallel};
use cellwarden_io::can::memory::{MemoryBus, NodeId};

pub(crate) use self::run::SystemWorld;

/// A two-node CAN bus: the system (our gateway) on one side, a device on the other.
#[derive(Debug)]
struct Link {
    name: String,
    bus: MemoryBus,
    system: NodeId,
    device: NodeId,
}

impl Link {
    fn new(name: String, tap: bool) -> Link {
        let mut bus = MemoryBus::new();
        if tap {
            bus.enable_tap(1 << 20);
        }
        let system = bus.attach("cellwarden");
        let device = bus.attach(&name);
        Link { name, bus, system, device }
    }
}

/// Our own pack: plant, sensors and the core's pack controller.
#[derive(Debug)]
pub(crate) struct OwnPack {
    plant: Plant,
    pub(crate) bms: Box<dyn Controller>,
    frontend: FrontEnd,
    next_measure: Instant,
    period: Duration,
    /// Emulated module boards, when the scenario has them, and what their inputs see.
    boards: Option<Boards>,
    board_cells_v: Vec<f64>,
    board_temps_c: Vec<f64>,
    /// Per group: the bleed current the boards draw now and the one the plant has.
    bleed_a: Vec<f64>,
    bleed_applied_a: Vec<f64>,
}

/// A rack battery: its plant, its emulated BMS, the relay we switch, the bus we read it on.
#[derive(Debug)]
pub(crate) struct CanPack {
    name: String,
    protocol: CanPackProtocol,
    plant: Plant,
    bms: CanBms,
    /// The relay as the gateway last switched it.
    relay: bool,
    link: Link,
}

/// One inverter: the emulated device and its bus.
#[derive(Debug)]
struct Inverter {
    name: String,
    protocol: InverterProtocolName,
    emu: InverterEmu,
    link: Link,
    /// Its part of the demand.
    weight: f64,
    /// The current it drives now, A, positive charging.
    current_a: f64,
}

/// What each pack carries now, and the most it ever exceeded its own limit.
#[derive(Clone, Copy, Debug, Default)]
struct PackFigures {
    current_a: f64,
    charge_a_max: f64,
    discharge_a_max: f64,
    over_limit_a_max: Option<f64>,
    connected: Duration,
    soc_start: f64,
}

/// Per-inverter figures.
#[derive(Clone, Copy, Debug, Default)]
struct InverterFigures {
    charge_a_max: f64,
    discharge_a_max: f64,
    over_limit_a_max: f64,
}

fn lv_profile(p: CanPackProtocol) -> lv::Profile {
    match p {
        CanPackProtocol::Pylontech => lv::Profile::Pylontech,
        CanPackProtocol::PylontechV13 => lv::Profile::PylontechV13,
        CanPackProtocol::Sma => lv::Profile::Sma,
        CanPackProtocol::Victron => lv::Profile::Victron,
    }
}

fn protocol_name(p: InverterProtocolName) -> &'static str {
    match p {
        InverterProtocolName::Victron => "victron",
        InverterProtocolName::Sma => "sma",
        InverterProtocolName::Pylontech => "pylontech",
        InverterProtocolName::Byd => "byd",
    }
}

fn pack_protocol_name(p: CanPackProtocol) -> &'static str {
    match p {
        CanPackProtocol::Pylontech => "pylontech",
        CanPackProtocol::PylontechV13 => "pylontech_v13",
        CanPackProtocol::Sma => "sma",
        CanPackProtocol::Victron => "victron",
    }
}

fn phase_name(p: PackPhase) -> &'static str {
    match p {
        PackPhase::Unheard => "never heard",
        PackPhase::Waiting => "waiting",
        PackPhase::Refused => "refused",
        PackPhase::Joining { .. } => "joining",
        PackPhase::Joined => "joined",
    }
}

fn stage_name(s: Option<Stage>) -> &'static str {
    match s {
        None => "never measured",
        Some(Stage::Obeying) => "obeying",
        Some(Stage::Warned) => "warned",
        Some(Stage::ZeroRequested) => "sent zero",
        Some(Stage::Opened) => "opened the system",
    }
}

fn drop_reason(r: DropReason) -> &'static str {
    match r {
        DropReason::Stale => "its reports stopped",
        DropReason::Disconnected => "it reports itself disconnected",
        DropReason::JoinTimeout => "it did not connect in time",
        DropReason::WrongVoltage => "it is connected at the wrong voltage",
        DropReason::Escalation => "an inverter does not obey its limits",
        DropReason::Implausible => "its reports are implausible",
        DropReason::Operator => "an operator stopped it",
    }
}

/// What was implausible in a pack's report, for the event log.
fn implausible_name(what: Implausible) -> &'static str {
    match what {
        Implausible::Voltage => "voltage",
        Implausible::ChargeVoltage => "charge voltage limit",
        Implausible::DischargeVoltage => "discharge voltage limit",
        Implausible::CurrentLimit => "current limit",
        Implausible::Current => "current",
        Implausible::Soc => "state of charge",
    }
}

/// What binds a combined limit, for the event log: a pack with the share of the current it
/// carries, the sum of the packs' limits, the setpoint, the inverter's cap, an escalation.
fn reason(r: CombinedReason, pack_names: &[String]) -> String {
    let pack =
        |p: u8| pack_names.get(usize::from(p)).cloned().unwrap_or_else(|| format!("pack {p}"));
    match r {
        CombinedReason::NoPack => "no pack".to_string(),
        CombinedReason::Pack { pack: p, share } => {
            format!(
                "{}'s limit at {} % of the current",
                pack(p),
                crate::report::text::fixed(f64::from(share.0) / 10.0, 1)
            )
        }
        CombinedReason::SumOfPacks => "sum".to_string(),
        CombinedReason::PackDisabled { pack: p } => format!("{} forbids it", pack(p)),
        CombinedReason::Setpoint => "remote setpoint".to_string(),
        CombinedReason::InverterCap => "its cap".to_string(),
        CombinedReason::Escalation => "not obeying".to_string(),
        CombinedReason::Halted => "halted".to_string(),
        CombinedReason::Ramp => "ramp".to_string(),
    }
}

/// A combiner action for the event log.
fn describe_action(a: &CombinerAction, pack_names: &[String], inv_names: &[String]) -> String {
    let pack =
        |p: u8| pack_names.get(usize::from(p)).cloned().unwrap_or_else(|| format!("pack {p}"));
    let inv =
        |i: u8| inv_names.get(usize::from(i)).cloned().unwrap_or_else(|| format!("inverter {i}"));
    match *a {
        CombinerAction::Connect { pack: p } => format!("connect {}", pack(p)),
        CombinerAction::Disconnect { pack: p, reason } => {
            format!("disconnect {}: {}", pack(p), drop_reason(reason))
        }
        CombinerAction::PackJoined { pack: p } => format!("{} joined the bank", pack(p)),
        CombinerAction::PackRefused { pack: p, difference_mv } => format!(
            "{} refused: {} V from the bank's voltage",
            pack(p),
            crate::report::text::fixed(f64::from(difference_mv.0) / 1000.0, 2)
        ),
        CombinerAction::PackImplausible { pack: p, what } => {
            format!("{} is faulty: implausible {}", pack(p), implausible_name(what))
        }
        CombinerAction::PackDropped { pack: p, reason } => {
            format!("{} dropped: {}", pack(p), drop_reason(reason))
        }
        CombinerAction::Limits {
            inverter,
            charge_ma,
            charge_reason,
            discharge_ma,
            discharge_reason,
        } => {
            format!(
                "{} limits: charge {} A ({}), discharge {} A ({})",
                inv(inverter),
                crate::report::text::fixed(f64::from(charge_ma.0) / 1000.0, 1),
                reason(charge_reason, pack_names),
                crate::report::text::fixed(f64::from(discharge_ma.0) / 1000.0, 1),
                reason(discharge_reason, pack_names)
            )
        }
        CombinerAction::Obedience { inverter, stage } => {
            format!("{}: {}", inv(inverter), stage_name(Some(stage)))
        }
        CombinerAction::InverterMissing { inverter } => {
            format!("{}: keep-alive stopped", inv(inverter))
        }
        CombinerAction::InverterBack { inverter } => format!("{}: keep-alive back", inv(inverter)),
        CombinerAction::SetpointExpired => "remote setpoint expired".to_string(),
    }
}

/// Builds the system of a scenario, or says why it cannot run.
fn build(
    scenario: &Scenario,
    parallel: &Parallel,
    tap: bool,
    controller: Option<Box<dyn Controller>>,
) -> Result<Built, String> {
    let start = Instant::ZERO;
    let own = if parallel.own_pack {
        let plant = Plant::new(&scenario.plant, scenario.seed);
        let bms =
            Bms::new(scenario.config.clone(), start).map_err(|e| format!("Bms::new: {e:?}"))?;
        let mut frontend = FrontEnd::new(
            &scenario.sensors,
            scenario.config.contactors.feedback,
            &plant,
            scenario.seed,
        );
        let boards = match &scenario.boards {
            Some(section) => {
                frontend.use_boards();
                // The loader checked that the cells make whole boards.
                let modules = scenario.config.cell_count / regs::CELLS as u16;
                Some(Boards::new(section, modules, start)?)
            }
            None => None,
        };
        let groups = plant.group_count();
        Some(OwnPack {
            boards,
            board_cells_v: Vec::with_capacity(groups),
            board_temps_c: Vec::new(),
            bleed_a: vec![0.0; groups],
            bleed_applied_a: vec![0.0; groups],
            plant,
            bms: controller.unwrap_or_else(|| Box::new(bms)),
            frontend,
            next_measure: start,
            period: scenario.sensors.measure_period.0.max(Duration::from_micros(1)),
        })
    } else {
        None
    };
    let mut cans = Vec::new();
    for (i, p) in parallel.can_packs.iter().enumerate() {
        let spec = crate::devices::can_bms::CanBmsSpec {
            profile: lv_profile(p.protocol),
            cells: p.cells,
            capacity_ah: p.capacity_ah,
            max_charge_a: p.max_charge_a.unwrap_or(p.capacity_ah * 0.5),
            max_discharge_a: p.max_discharge_a.unwrap_or(p.capacity_ah),
            name: *b"PYLON\0\0\0",
        };
        let plant_spec = can_plant(scenario, p);
        let mut plant = Plant::new(&plant_spec, scenario.seed.wrapping_add(1 + i as u64));
        // The pack's own switch is modelled by the main contactors; the rack has no precharge.
        plant.set_contactor(cellwarden_core::ContactorId::Negative, true);
        let name = p.name.clone().unwrap_or_else(|| format!("can pack {i}"));
        cans.push(CanPack {
            link: Link::new(format!("pack{i}"), tap),
            name,
            protocol: p.protocol,
            plant,
            bms: CanBms::new(spec),
            relay: false,
        });
    }
    let mut links = GatewayConfig::new(parallel.combiner.clone());
    let pack_links =
        own.iter().map(|_| PackLink::Controller).chain(cans.iter().map(|_| PackLink::LvCan));
    for link in pack_links {
        links.packs.push(link).map_err(|_| "too many packs".to_string())?;
    }
    let weights: f64 = parallel.combiner.inverters.iter().map(|s| f64::from(s.share.0)).sum();
    let mut invs = Vec::new();
    for (k, e) in parallel.inverters.iter().enumerate() {
        let spec = crate::devices::inverter::InverterSpec {
            protocol: match e.protocol {
                InverterProtocolName::Victron => {
                    crate::devices::inverter::InverterProtocol::Victron
                }
                InverterProtocolName::Sma => crate::devices::inverter::InverterProtocol::Sma,
                InverterProtocolName::Pylontech => {
                    crate::devices::inverter::InverterProtocol::Pylontech
                }
                InverterProtocolName::Byd => crate::devices::inverter::InverterProtocol::Byd,
            },
            obeys_limits: e.obeys_limits,
            start_at: e.start_at.0,
            keepalive_stops_at: e.keepalive_stops_at.map(|s| s.0),
            max_charge_a: e.max_charge_a,
            max_discharge_a: e.max_discharge_a,
        };
        let link = match e.protocol {
            InverterProtocolName::Byd => {
                let wh: f64 = total_capacity_wh(scenario, parallel);
                InverterLink::BydCan { capacity_wh: wh.round() as u32 }
            }
            p => {
                let profile = match p {
                    InverterProtocolName::Victron => lv::Profile::Victron,
                    InverterProtocolName::Sma => lv::Profile::Sma,
                    _ => lv::Profile::Pylontech,
                };
                let mode = match e.mode {
                    crate::scenario::parallel::SendMode::Push => {
                        lv::Mode::Push { period: Duration::from_secs(1) }
                    }
                    crate::scenario::parallel::SendMode::Sync => lv::Mode::Sync,
                };
                InverterLink::LvCan { profile, dlc: lv::Dlc::Full, mode, spacing: Duration::ZERO }
            }
        };
        links.inverters.push(link).map_err(|_| "too many inverters".to_string())?;
        let weight = parallel.combiner.inverters.get(k).map_or(0.0, |s| f64::from(s.share.0))
            / weights.max(1.0);
        invs.push(Inverter {
            name: e
                .name
                .clone()
                .unwrap_or_else(|| format!("inverter {k} ({})", protocol_name(e.protocol))),
            protocol: e.protocol,
            emu: InverterEmu::new(spec),
            link: Link::new(format!("inv{k}"), tap),
            weight,
            current_a: 0.0,
        });
    }
    let gateway = Gateway::new(links, start).map_err(|e| format!("Gateway::new: {e:?}"))?;
    Ok(Built { own, cans, invs, gateway })
}

/// A system as [`build`] makes it.
#[derive(Debug)]
struct Built {
    own: Option<OwnPack>,
    cans: Vec<CanPack>,
    invs: Vec<Inverter>,
    gateway: Gateway,
}

/// The plant of a CAN pack: LFP cells of its capacity, one string.
fn can_plant(
    scenario: &Scenario,
    p: &crate::scenario::parallel::CanPackEntry,
) -> crate::plant::PlantSpec {
    let mut cell = crate::plant::CellParams::lfp_cell(p.capacity_ah);
    if let Some(r) = p.r0_mohm {
        cell.r0_ohm = r / 1000.0;
    }
    let base = &scenario.plant;
    crate::plant::PlantSpec {
        cell,
        series_per_module: p.cells,
        modules: 1,
        strings: 1,
        sensors_per_module: 4,
        initial_soc: p.initial_soc,
        initial_temp_c: base.initial_temp_c,
        ambient_c: base.ambient_c,
        spread: Spread { outliers: Vec::new(), ..base.spread.clone() },
        bus: base.bus,
    }
}

/// Nominal energy of every pack together, Wh (what a BYD-protocol inverter is told).
fn total_capacity_wh(scenario: &Scenario, parallel: &Parallel) -> f64 {
    let mut wh = 0.0;
    if parallel.own_pack {
        let p = &scenario.plant;
        let nominal_v = match p.cell.chemistry {
            crate::plant::Chemistry::Nca => 3.6,
            crate::plant::Chemistry::Lfp => 3.2,
        };
        wh += p.cell.capacity_ah
            * f64::from(p.strings)
            * f64::from(p.series_per_module)
            * f64::from(p.modules)
            * nominal_v;
    }
    for c in &parallel.can_packs {
        wh += c.capacity_ah * f64::from(c.cells) * 3.2;
    }
    wh
}

/// A frame for the candump log of a run.
#[derive(Clone, Debug)]
pub struct LoggedFrame {
    /// When it was sent.
    pub at: Instant,
    /// The bus (`pack0`, `inv1`, ...).
    pub bus: String,
    /// The frame.
    pub frame: Frame,
}
