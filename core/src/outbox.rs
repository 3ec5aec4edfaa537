//! The bounded queue of events waiting for `poll_action`.

use heapless::Deque;

use crate::action::{Action, FaultEvent, SequenceEvent};

/// How many events may wait between two drains. One evaluation raises at most one event per rule
/// and tier plus a few sequencing events, so a drained queue never overflows; an adapter that stops
/// draining loses the newest events (counted), never a contactor command or a limit, which are
/// derived from state rather than queued.
pub const EVENT_QUEUE_CAPACITY: usize = 128;

#[derive(Debug)]
pub(crate) struct Outbox {
    queue: Deque<Action, EVENT_QUEUE_CAPACITY>,
    /// Events dropped because the queue was full.
    pub dropped: u32,
}

impl Outbox {
    pub const fn new() -> Self {
        Outbox { queue: Deque::new(), dropped: 0 }
    }

    pub fn event(&mut self, event: FaultEvent) {
        self.push(Action::Fault(event));
    }

    pub fn sequence(&mut self, event: SequenceEvent) {
        self.push(Action::Sequence(event));
    }

    fn push(&mut self, action: Action) {
        if self.queue.push_back(action).is_err() {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    pub fn pop(&mut self) -> Option<Action> {
        self.queue.pop_front()
    }
}
