//! A CAN bus in memory for the virtual-time engine: deterministic, no runtime, no clock.
//!
//! Nodes attach by name and get a [`NodeId`]. A frame one node sends reaches every other node's
//! receive queue, stamped with the sender's instant, in the order sent; the sender never
//! receives its own frame back (as with a CAN controller that does not loop back). Nothing is
//! arbitrated or delayed: the engine decides when a node sends and when it reads.
//!
//! Every queue is bounded. When a node does not read and its queue is full, the oldest frame is
//! dropped and counted ([`MemoryBus::dropped`]): a real controller that is not serviced loses
//! frames too, and a stuck node must not make the simulation grow without bound.
//!
//! The optional tap records all traffic (who sent what, when) for a candump log of the bus; it
//! is bounded the same way and drained by [`MemoryBus::tap`].

use std::collections::VecDeque;

use cellwarden_core::Instant;
use cellwarden_core::proto::can::Frame;

/// Frames a node's receive queue holds before the oldest is dropped.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;
/// Records the tap holds between drains before the oldest is dropped.
pub const DEFAULT_TAP_CAPACITY: usize = 65_536;

/// A node on one [`MemoryBus`]; valid only on the bus that issued it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(u16);

impl NodeId {
    /// The node's position in attach order (0 for the first).
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// One frame on the bus as the tap saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TapRecord {
    /// When it was sent.
    pub at: Instant,
    /// Who sent it.
    pub from: NodeId,
    /// The frame.
    pub frame: Frame,
}

/// A deterministic in-memory CAN bus (see the module documentation).
#[derive(Debug)]
pub struct MemoryBus {
    nodes: Vec<Node>,
    queue_capacity: usize,
    tap: Option<Tap>,
}

impl MemoryBus {
    /// An empty bus whose queues hold [`DEFAULT_QUEUE_CAPACITY`] frames.
    pub fn new() -> MemoryBus {
        MemoryBus::with_capacity(DEFAULT_QUEUE_CAPACITY)
    }

    /// An empty bus whose receive queues hold `capacity` frames (at least one).
    pub fn with_capacity(capacity: usize) -> MemoryBus {
        MemoryBus { nodes: Vec::new(), queue_capacity: capacity.max(1), tap: None }
    }

    /// Starts recording all traffic, at most `capacity` records (at least one) between drains.
    /// Frames sent before this call are not recorded.
    pub fn enable_tap(&mut self, capacity: usize) {
        self.tap = Some(Tap { records: VecDeque::new(), capacity: capacity.max(1), dropped: 0 });
    }

    /// Attaches a node named `name` (for logs and messages; names need not be unique). It
    /// receives only frames sent after this call.
    ///
    /// # Panics
    /// With more than 65 536 nodes, which is a programming error.
    pub fn attach(&mut self, name: &str) -> NodeId {
        let id = u16::try_from(self.nodes.len()).expect("at most 65 536 nodes on one bus");
        self.nodes.push(Node {
            name: name.to_owned(),
            queue: VecDeque::new(),
            sent: 0,
            received: 0,
            dropped: 0,
        });
        NodeId(id)
    }

    /// Puts `frame`, sent by `from` at `at`, into every other node's queue (dropping each full
    /// queue's oldest frame) and into the tap.
    ///
    /// # Panics
    /// When `from` was not issued by this bus.
    pub fn send(&mut self, from: NodeId, at: Instant, frame: Frame) {
        let capacity = self.queue_capacity;
        self.node_mut(from).sent += 1;
        for (index, node) in self.nodes.iter_mut().enumerate() {
            if index == from.index() {
                continue;
            }
            if node.queue.len() >= capacity {
                node.queue.pop_front();
                node.dropped += 1;
            }
            node.queue.push_back((at, frame));
        }
        if let Some(tap) = &mut self.tap {
            if tap.records.len() >= tap.capacity {
                tap.records.pop_front();
                tap.dropped += 1;
            }
            tap.records.push_back(TapRecord { at, from, frame });
        }
    }

    /// The oldest frame waiting for `node`, with the instant it was sent.
    ///
    /// # Panics
    /// When `node` was not issued by this bus.
    pub fn recv(&mut self, node: NodeId) -> Option<(Instant, Frame)> {
        let node = self.node_mut(node);
        let next = node.queue.pop_front();
        if next.is_some() {
            node.received += 1;
        }
        next
    }

    /// Frames waiting for `node`.
    pub fn pending(&self, node: NodeId) -> usize {
        self.node(node).queue.len()
    }

    /// Frames dropped from `node`'s full queue so far.
    pub fn dropped(&self, node: NodeId) -> u64 {
        self.node(node).dropped
    }

    /// Frames `node` has sent so far.
    pub fn sent(&self, node: NodeId) -> u64 {
        self.node(node).sent
    }

    /// Frames `node` has taken from its queue so far.
    pub fn received(&self, node: NodeId) -> u64 {
        self.node(node).received
    }

    /// The name `node` attached with.
    pub fn name(&self, node: NodeId) -> &str {
        &self.node(node).name
    }

    /// The attached nodes, in attach order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        // `attach` keeps the count within u16.
        (0..self.nodes.len()).map(|index| NodeId(index as u16))
    }

    /// Takes everything the tap recorded since the last call, oldest first; empty when the tap
    /// is off.
    pub fn tap(&mut self) -> Vec<TapRecord> {
        self.tap.as_mut().map_or_else(Vec::new, |tap| tap.records.drain(..).collect())
    }

    /// Records the tap dropped because it was not drained in time.
    pub fn tap_dropped(&self) -> u64 {
        self.tap.as_ref().map_or(0, |tap| tap.dropped)
    }

    fn node(&self, id: NodeId) -> &Node {
        self.nodes.get(id.index()).expect("a NodeId from another bus")
    }

    fn node_mut(&mut self, id: NodeId) -> &mut Node {
        self.nodes.get_mut(id.index()).expect("a NodeId from another bus")
    }
}

impl Default for MemoryBus {
    fn default() -> Self {
        MemoryBus::new()
    }
}

#[derive(Debug)]
struct Node {
    name: String,
    queue: VecDeque<(Instant, Frame)>,
    sent: u64,
    received: u64,
    dropped: u64,
}

#[derive(Debug)]
struct Tap {
    records: VecDeque<TapRecord>,
    capacity: usize,
    dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_node_sees_only_later_frames() {
        let mut bus = MemoryBus::new();
        let a = bus.attach("a");
        let frame = Frame::standard(0x100, &[1]).unwrap();
        bus.send(a, Instant::ZERO, frame);
        let b = bus.attach("b");
        assert_eq!(bus.recv(b), None);
        bus.send(a, Instant::from_millis(1), frame);
        assert_eq!(bus.recv(b), Some((Instant::from_millis(1), frame)));
        assert_eq!((bus.sent(a), bus.received(b)), (2, 1));
        assert_eq!(bus.name(b), "b");
    }
}
