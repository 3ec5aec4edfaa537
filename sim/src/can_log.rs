//! `run --candump` and `all --candump`: every frame of a parallel system's CAN buses, written to
//! `can.log` in candump format as the run goes.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use cellwarden_io::can::candump::LogWriter;
use cellwarden_sim::engine::LoggedFrame;

/// The file name of the log in a scenario's output directory.
pub const FILE_NAME: &str = "can.log";

/// A `can.log` being written. Stamps are virtual time from an epoch of 0 s, so that the same
/// scenario gives the same file byte for byte.
///
/// A failed write does not stop the run: the log keeps the first error, writes nothing more,
/// and [`finish`](CanLog::finish) returns it.
#[derive(Debug)]
pub struct CanLog {
    path: PathBuf,
    writer: LogWriter<BufWriter<File>>,
    frames: u64,
    error: Option<io::Error>,
}

impl CanLog {
    /// Creates `dir/can.log` (and `dir`) when the scenario has CAN buses. Without them it says
    /// so on stderr, under `label`, and returns `None`: there is nothing to log.
    pub fn create(has_buses: bool, dir: &Path, label: &str) -> Result<Option<CanLog>, String> {
        if !has_buses {
            eprintln!(
                "note: {label}: not a parallel system (no [[can_packs]] or [[inverters]]), so it \
                 has no CAN buses; --candump writes no {FILE_NAME}"
            );
            return Ok(None);
        }
        fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
        let path = dir.join(FILE_NAME);
        let file = File::create(&path).map_err(|err| format!("{}: {err}", path.display()))?;
        let writer = LogWriter::new(BufWriter::new(file), std::time::Duration::ZERO);
        Ok(Some(CanLog { path, writer, frames: 0, error: None }))
    }

    /// Writes one frame, stamped with its virtual time and named by its bus.
    pub fn write(&mut self, logged: &LoggedFrame) {
        if self.error.is_some() {
            return;
        }
        match self.writer.write(logged.at, &logged.bus, &logged.frame) {
            Ok(()) => self.frames += 1,
            Err(err) => self.error = Some(err),
        }
    }

    /// Flushes the file; returns its path and the number of frames in it, or the first error.
    pub fn finish(mut self) -> Result<(PathBuf, u64), String> {
        let flushed = match self.error.take() {
            Some(err) => Err(err),
            None => self.writer.flush(),
        };
        match flushed {
            Ok(()) => Ok((self.path, self.frames)),
            Err(err) => Err(format!("{}: {err}", self.path.display())),
        }
    }
}
