//! An operator's stop and start for one pack: the combiner, not the adapter, decides when a
//! pack the operator let go may close again.

use super::{Combiner, CombinerAction, DropReason, OperatorCommand, PackPhase, bump};

impl Combiner {
    /// An operator's stop takes the pack out of the bank now and holds it out; a start only
    /// lifts the hold, so the pack comes back through the join rules like any other (never
    /// closed while the bank is loaded or its voltage is outside the window).
    pub(super) fn operator(&mut self, pack: u8, command: OperatorCommand) {
        if usize::from(pack) >= self.config.packs.len() {
            bump(&mut self.status.counters.out_of_range);
            return;
        }
        let p = self.status.packs[usize::from(pack)];
        match command {
            OperatorCommand::Start => self.status.packs[usize::from(pack)].held = false,
            OperatorCommand::Stop => {
                let reason = DropReason::Operator;
                // Open it whatever the combiner believes: it may have been closed by hand.
                if p.connected || matches!(p.phase, PackPhase::Joined | PackPhase::Joining { .. }) {
                    self.push(CombinerAction::Disconnect { pack, reason });
                }
                if p.phase == PackPhase::Joined {
                    self.push(CombinerAction::PackDropped { pack, reason });
                }
                let s = &mut self.status.packs[usize::from(pack)];
                s.held = true;
                if matches!(s.phase, PackPhase::Joined | PackPhase::Joining { .. }) {
                    s.phase = PackPhase::Waiting;
                }
            }
        }
    }
}
