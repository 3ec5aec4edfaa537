//! Whether the inverters keep to what they are sent: keep-alives and the escalation against an
//! inverter that stays over its limits.

use super::{Combiner, CombinerAction, CombinerConfig, DropReason, PackPhase, Stage};
use crate::units::MilliAmps;

impl Combiner {
    pub(super) fn check_keepalives(&mut self) {
        for k in 0..self.config.inverters.len() {
            let timeout = self.config.inverters[k].keepalive_timeout_ms;
            let inv = self.status.inverters[k];
            let Some(at) = inv.last_alive else { continue };
            if timeout == 0 {
                continue;
            }
            let missing = self.now.saturating_since(at) > CombinerConfig::ms(timeout);
            if missing != inv.missing {
                self.status.inverters[k].missing = missing;
                let inverter = k as u8;
                self.push(if missing {
                    CombinerAction::InverterMissing { inverter }
                } else {
                    CombinerAction::InverterBack { inverter }
                });
            }
        }
    }

    /// Compares each inverter's current with what it was sent; escalates the ones that stay
    /// over. Returns whether the views must be recomputed.
    pub(super) fn check_obedience(&mut self) -> bool {
        let o = self.config.obedience;
        let mut recompute = false;
        let mut open = false;
        for k in 0..self.config.inverters.len() {
            let inv = self.status.inverters[k];
            let Some((at, ma)) = inv.current.filter(|(at, _)| self.fresh(*at)) else { continue };
            let allowed = |limit: MilliAmps| {
                i64::from(limit.0)
                    + i64::from(o.tolerance_ma.0)
                    + i64::from(o.tolerance.of(limit.0))
            };
            let over = i64::from(ma.0) > allowed(inv.view.charge_limit_ma)
                || -i64::from(ma.0) > allowed(inv.view.discharge_limit_ma);
            let s = &mut self.status.inverters[k];
            if s.stage.is_none() {
                s.stage = Some(Stage::Obeying);
            }
            if over {
                s.within_since = None;
                let since = *s.over_since.get_or_insert(at);
                let elapsed = self.now.saturating_since(since);
                let stage = if elapsed >= CombinerConfig::ms(o.open_after_ms) {
                    Stage::Opened
                } else if elapsed >= CombinerConfig::ms(o.zero_after_ms) {
                    Stage::ZeroRequested
                } else if elapsed >= CombinerConfig::ms(o.warn_after_ms) {
                    Stage::Warned
                } else {
                    Stage::Obeying
                };
                if Some(stage) > s.stage {
                    s.stage = Some(stage);
                    recompute |= stage >= Stage::ZeroRequested;
                    open |= stage == Stage::Opened && !self.status.halted;
                    self.push(CombinerAction::Obedience { inverter: k as u8, stage });
                }
            } else if s.over_since.is_some() {
                // Back within the limits. After a warning's time the limits are restored, but
                // the violation is remembered: an inverter that obeys zero and then ignores the
                // restored limit goes on from where it was and ends opened. Only as long within
                // the limits as it takes to open forgives it.
                let since = *s.within_since.get_or_insert(at);
                let within = self.now.saturating_since(since);
                if within >= CombinerConfig::ms(o.open_after_ms) {
                    s.over_since = None;
                    s.within_since = None;
                }
                let restore = within >= CombinerConfig::ms(o.warn_after_ms)
                    && s.stage.is_some_and(|st| st == Stage::Warned || st == Stage::ZeroRequested);
                if restore {
                    s.stage = Some(Stage::Obeying);
                    recompute = true;
                    self.push(CombinerAction::Obedience {
                        inverter: k as u8,
                        stage: Stage::Obeying,
                    });
                }
            }
        }
        if open {
            self.status.halted = true;
            for i in 0..self.config.packs.len() {
                let phase = self.status.packs[i].phase;
                if matches!(phase, PackPhase::Joined | PackPhase::Joining { .. }) {
                    let pack = i as u8;
                    self.push(CombinerAction::Disconnect { pack, reason: DropReason::Escalation });
                    if phase == PackPhase::Joined {
                        self.push(CombinerAction::PackDropped {
                            pack,
                            reason: DropReason::Escalation,
                        });
                    }
                    self.status.packs[i].phase = PackPhase::Waiting;
                }
            }
            recompute = true;
        }
        recompute
    }
}
