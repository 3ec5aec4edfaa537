//! Reading a text file whose size is capped before it is read.
//!
//! Scenario files and CSV profiles are input the simulator does not control: a path can name
//! `/dev/zero`, a pipe or a file of gigabytes. The size on disk says nothing for devices and
//! pipes, so the reader takes at most one byte more than the cap and refuses the file when
//! that byte arrives. Nothing beyond the cap is ever read or kept.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The most a scenario file may hold: room for tens of thousands of expectations.
pub const SCENARIO_MAX_BYTES: u64 = 8 * 1024 * 1024;
/// The most a CSV profile may hold: about half a million rows of a second each.
pub const PROFILE_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Why a capped text file could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// Opening or reading failed.
    Io(io::Error),
    /// The file holds more than `cap` bytes; reading stopped there.
    TooLarge {
        /// The cap, bytes.
        cap: u64,
        /// What the file was to be, e.g. `a scenario file`.
        what: &'static str,
    },
    /// The bytes are not UTF-8 text.
    NotText,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(err) => write!(f, "cannot read: {err}"),
            ReadError::TooLarge { cap, what } => write!(
                f,
                "larger than {}, the most {what} may hold; reading stopped there",
                size(*cap)
            ),
            ReadError::NotText => f.write_str("not UTF-8 text"),
        }
    }
}

impl std::error::Error for ReadError {}

/// The text of `path`, refused without reading further once it exceeds `cap` bytes; `what`
/// names the kind of file in the message (`a scenario file`).
pub fn read_capped(path: &Path, cap: u64, what: &'static str) -> Result<String, ReadError> {
    let file = File::open(path).map_err(ReadError::Io)?;
    read_capped_from(file, cap, what)
}

/// [`read_capped`] on any reader.
pub fn read_capped_from(
    reader: impl Read,
    cap: u64,
    what: &'static str,
) -> Result<String, ReadError> {
    let mut bytes = Vec::new();
    reader.take(cap.saturating_add(1)).read_to_end(&mut bytes).map_err(ReadError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge { cap, what });
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotText)
}

/// `8 MiB`, `512 KiB` or `100 bytes`: a cap as people read it.
fn size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    if bytes >= MIB && bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes % KIB == 0 {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_cap_and_refuses_one_byte_more() {
        assert_eq!(read_capped_from(&b"abcd"[..], 4, "a test").unwrap(), "abcd");
        let err = read_capped_from(&b"abcde"[..], 4, "a test").unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { cap: 4, .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "larger than 4 bytes, the most a test may hold; reading stopped there"
        );
    }

    #[test]
    fn an_endless_source_is_read_only_to_the_cap() {
        // `io::repeat` never ends: reading it whole would never return.
        let mut source = io::repeat(b'x');
        let err = read_capped_from(&mut source, 1024, "a test").unwrap_err();
        assert_eq!(
            err.to_string(),
            "larger than 1 KiB, the most a test may hold; reading stopped there"
        );
    }

    #[test]
    fn refuses_bytes_that_are_not_text() {
        assert!(matches!(
            read_capped_from(&[0xff, 0xfe][..], 10, "a test"),
            Err(ReadError::NotText)
        ));
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(8 * 1024 * 1024), "8 MiB");
        assert_eq!(size(512 * 1024), "512 KiB");
        assert_eq!(size(1536), "1536 bytes");
    }
}
