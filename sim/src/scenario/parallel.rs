//! Scenario sections of a parallel system: rack batteries with their own CAN BMS next to (or
//! instead of) our own pack, the combiner, and inverters that speak CAN protocols.
//!
//! A scenario with `[[can_packs]]` or `[[inverters]]` runs as a parallel system (the engine's
//! `parallel` arrangement): every pack on one DC bus, the core's gateway and combiner deciding
//! which packs join and what each inverter is told, every byte of it over emulated CAN buses.

use serde::Deserialize;

use super::span::Span;
use cellwarden_core::combiner::CombinerConfig;

/// One rack battery with its own CAN BMS (`[[can_packs]]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanPackEntry {
    /// Shown in the report.
    #[serde(default)]
    pub name: Option<String>,
    /// What its BMS sends.
    #[serde(default)]
    pub protocol: CanPackProtocol,
    /// LFP cells in series (15 for a US2000/US3000-style 48 V rack, 16 for a 51.2 V one).
    #[serde(default = "fifteen")]
    pub cells: u16,
    /// Capacity.
    #[serde(default = "fifty")]
    pub capacity_ah: f64,
    /// Starting state of charge, 0 to 1.
    #[serde(default = "half")]
    pub initial_soc: f64,
    /// Largest charge current its BMS allows; half the capacity per hour when left out.
    pub max_charge_a: Option<f64>,
    /// Largest discharge current its BMS allows; the capacity per hour when left out.
    pub max_discharge_a: Option<f64>,
    /// Series resistance of one cell, mΩ; the LFP default when left out.
    pub r0_mohm: Option<f64>,
}

/// The protocol profile a CAN pack's BMS speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CanPackProtocol {
    /// Pylontech, classic frame set with 0x359 and 0x35C.
    #[default]
    Pylontech,
    /// Pylontech firmware 1.3: 0x35A and 0x35F instead.
    PylontechV13,
    /// SMA Sunny Island profile.
    Sma,
    /// Victron profile with its extension frames.
    Victron,
}

/// The protocol an inverter speaks towards the battery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InverterProtocolName {
    /// Victron GX (low-voltage CAN, Victron frame set).
    Victron,
    /// SMA Sunny Island (low-voltage CAN, SMA frame set).
    Sma,
    /// A Pylontech-compatible hybrid inverter (low-voltage CAN, Pylontech frame set).
    Pylontech,
    /// A Sungrow/GoodWe-style hybrid inverter on BYD HVS CAN.
    Byd,
}

/// When the battery side sends its low-voltage CAN frame set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendMode {
    /// Every second, whatever the inverter does.
    #[default]
    Push,
    /// One frame set after each of the inverter's 0x305 keep-alives.
    Sync,
}

/// One inverter (`[[inverters]]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InverterEntry {
    /// Shown in the report.
    #[serde(default)]
    pub name: Option<String>,
    /// What it speaks.
    pub protocol: InverterProtocolName,
    /// Its part of the timeline's demand and of the combined current limits, 0 to 1; the
    /// inverters' shares add up to at most 1. Equal shares when left out.
    pub share: Option<f64>,
    /// Whether it keeps to the limits it is sent.
    #[serde(default = "yes")]
    pub obeys_limits: bool,
    /// It is off (silent, no current) until this time.
    #[serde(default)]
    pub start_at: Span,
    /// It stops sending its keep-alive at this time (and goes on running).
    pub keepalive_stops_at: Option<Span>,
    /// Its own largest charge current.
    #[serde(default = "two_hundred")]
    pub max_charge_a: f64,
    /// Its own largest discharge current.
    #[serde(default = "two_hundred")]
    pub max_discharge_a: f64,
    /// Largest charge current the combiner ever sends it; its `max_charge_a` when left out.
    pub charge_cap_a: Option<f64>,
    /// Largest discharge current the combiner ever sends it; its `max_discharge_a` when left out.
    pub discharge_cap_a: Option<f64>,
    /// Added to the voltage limits it is sent, mV (±2000).
    #[serde(default)]
    pub voltage_offset_mv: i32,
    /// Low-voltage CAN only: push the frame set every second or send it after each 0x305.
    #[serde(default)]
    pub mode: SendMode,
}

/// `[combiner]`: the combiner's settings; every field has a default.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CombinerSection {
    /// A pack whose reports are older than this is dropped (default 5 s).
    pub stale_after: Option<Span>,
    /// A pack joins only within this of the bank's voltage, mV (default 1000).
    pub join_window_mv: Option<i32>,
    /// A dropped pack is not asked to connect again for this long (default 30 s).
    pub rejoin_after: Option<Span>,
    /// Part of what the measured shares allow that is sent, 0 to 1 (default 0.9).
    pub share_margin: Option<f64>,
    /// An inverter over its limit this long is warned about (default 5 s).
    pub warn_after: Option<Span>,
    /// ... is sent zero current (default 15 s).
    pub zero_after: Option<Span>,
    /// ... makes every pack open gracefully (default 30 s).
    pub open_after: Option<Span>,
    /// Current over a limit that still counts as obeying, A (default 2).
    pub tolerance_a: Option<f64>,
    /// An increase of an inverter's limits rises at its cap per this time (default 5 s; `"0s"`
    /// sends every increase at once).
    pub limit_ramp: Option<Span>,
}

/// A checked parallel system.
#[derive(Clone, Debug)]
pub struct Parallel {
    /// Whether `[system]` (our own pack controller with its plant) is on the bus, as pack 0.
    pub own_pack: bool,
    /// The CAN packs, numbered after the own pack in the combiner.
    pub can_packs: Vec<CanPackEntry>,
    /// The inverters.
    pub inverters: Vec<InverterEntry>,
    /// The combiner's configuration, validated by the core.
    pub combiner: CombinerConfig,
}

impl Parallel {
    /// The combiner's number of CAN pack `i`.
    pub fn pack_number(&self, can_pack: usize) -> usize {
        can_pack + usize::from(self.own_pack)
    }
}

fn fifteen() -> u16 {
    15
}
fn fifty() -> f64 {
    50.0
}
fn half() -> f64 {
    0.5
}
fn yes() -> bool {
    true
}
fn two_hundred() -> f64 {
    200.0
}
