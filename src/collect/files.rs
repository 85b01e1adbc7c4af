//! Files as the tailer sees them: identity by fingerprint, and reading complete lines
//! from an offset.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest, Sha256};

/// How much of a file's start identifies it: its first line, up to this many bytes.
pub const FINGERPRINT_BYTES: usize = 4096;

pub fn is_compressed(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "gz")
}

/// A reader of a file's content (decompressed for `.gz`).
fn content(file: File, compressed: bool) -> Box<dyn Read + Send + Sync> {
    if compressed {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    }
}

/// The identity of a file: a hash of its first line (of its decompressed content for
/// `.gz`, so a rotated and compressed file is recognised as the file it was). `None`
/// while the file has no complete first line (and is shorter than `FINGERPRINT_BYTES`):
/// such a file is not read until it grows.
pub fn fingerprint(path: &Path) -> io::Result<Option<String>> {
    let file = File::open(path)?;
    let mut head = Vec::with_capacity(512);
    content(file, is_compressed(path))
        .take(FINGERPRINT_BYTES as u64)
        .read_to_end(&mut head)
        .or_else(|error| {
            // A `.gz` still being written may end mid-stream: use what decompressed.
            if error.kind() == io::ErrorKind::UnexpectedEof {
                Ok(head.len())
            } else {
                Err(error)
            }
        })?;
    let first_line = match memchr::memchr(b'\n', &head) {
        Some(end) => &head[..=end],
        None if head.len() >= FINGERPRINT_BYTES => &head[..],
        None => return Ok(None),
    };
    let digest = Sha256::digest(first_line);
    Ok(Some(hex::encode(&digest[..12])))
}

/// Reads lines from a position on: complete lines only. A partial last line is held
/// (at most `max_line_bytes` of it) until its newline arrives; a reader kept across polls
/// goes on from where the file ended. Lines longer than `max_line_bytes` are reported as
/// such without holding them.
pub struct LineReader {
    reader: BufReader<Box<dyn Read + Send + Sync>>,
    /// Offset (in content bytes) just past the last complete line returned.
    position: u64,
    max_line_bytes: usize,
    /// The start of a line whose newline has not arrived yet.
    pending: Vec<u8>,
    /// Its full length so far (more than `pending` holds once it is too long).
    pending_length: u64,
}

/// One line read.
#[derive(Debug, PartialEq)]
pub enum Line {
    /// A complete line (without its newline) and the offset just past its newline.
    Text { bytes: Vec<u8>, end: u64 },
    /// A line over the limit: its first bytes, its length, and the offset past it.
    TooLong {
        sample: Vec<u8>,
        length: u64,
        end: u64,
    },
}

impl LineReader {
    /// Opens `path` positioned at `offset` (decompressing `.gz` and skipping to it).
    pub fn open(path: &Path, offset: u64, max_line_bytes: usize) -> io::Result<LineReader> {
        let compressed = is_compressed(path);
        let mut file = File::open(path)?;
        if !compressed {
            file.seek(SeekFrom::Start(offset))?;
        }
        let mut reader = BufReader::with_capacity(1 << 16, content(file, compressed));
        if compressed {
            io::copy(&mut (&mut reader).take(offset), &mut io::sink())?;
        }
        Ok(LineReader {
            reader,
            position: offset,
            max_line_bytes,
            pending: Vec::new(),
            pending_length: 0,
        })
    }

    /// Reads an already open plain file from `offset` (a file that may have been renamed
    /// or deleted since it was found).
    pub fn from_file(mut file: File, offset: u64, max_line_bytes: usize) -> io::Result<LineReader> {
        file.seek(SeekFrom::Start(offset))?;
        Ok(LineReader {
            reader: BufReader::with_capacity(1 << 16, Box::new(file)),
            position: offset,
            max_line_bytes,
            pending: Vec::new(),
            pending_length: 0,
        })
    }

    /// Offset just past the last complete line returned.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Bytes of a partial line held back.
    pub fn pending_bytes(&self) -> u64 {
        self.pending_length
    }

    /// The next complete line, or `None` when only a partial line (or nothing) is left.
    pub fn next_line(&mut self) -> io::Result<Option<Line>> {
        loop {
            let available = match self.reader.fill_buf() {
                Ok(available) => available,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                // A `.gz` being written ends mid-stream: what is there is all there is.
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => &[],
                Err(error) => return Err(error),
            };
            if available.is_empty() {
                return Ok(None);
            }
            let (chunk, done) = match memchr::memchr(b'\n', available) {
                Some(end) => (&available[..end], true),
                None => (available, false),
            };
            let room = (self.max_line_bytes + 1).saturating_sub(self.pending.len());
            self.pending
                .extend_from_slice(&chunk[..chunk.len().min(room)]);
            self.pending_length += chunk.len() as u64;
            let consumed = chunk.len() + usize::from(done);
            self.reader.consume(consumed);
            if done {
                self.position += self.pending_length + 1;
                return Ok(Some(self.take_line()));
            }
        }
    }

    /// The held partial line, as a last line: for a file that will not grow any more.
    pub fn take_partial(&mut self) -> Option<Line> {
        if self.pending_length == 0 {
            return None;
        }
        self.position += self.pending_length;
        Some(self.take_line())
    }

    /// The held line, ending at `position`: its text, or a sample if it is too long.
    fn take_line(&mut self) -> Line {
        let length = std::mem::take(&mut self.pending_length);
        let mut bytes = std::mem::take(&mut self.pending);
        if length > self.max_line_bytes as u64 {
            bytes.truncate(crate::store::DEAD_LETTER_LINE_BYTES);
            Line::TooLong {
                sample: bytes,
                length,
                end: self.position,
            }
        } else {
            Line::Text {
                bytes,
                end: self.position,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn partial_lines_wait_for_their_newline_and_long_lines_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let mut file = File::create(&path).unwrap();
        file.write_all(b"one\ntw").unwrap();
        let mut reader = LineReader::open(&path, 0, 8).unwrap();
        assert_eq!(
            reader.next_line().unwrap(),
            Some(Line::Text {
                bytes: b"one".to_vec(),
                end: 4
            })
        );
        assert_eq!(reader.next_line().unwrap(), None);
        assert_eq!((reader.position(), reader.pending_bytes()), (4, 2));
        file.write_all(b"o\n0123456789ab\nthree").unwrap();
        assert_eq!(
            reader.next_line().unwrap(),
            Some(Line::Text {
                bytes: b"two".to_vec(),
                end: 8
            })
        );
        match reader.next_line().unwrap() {
            Some(Line::TooLong { length, end, .. }) => assert_eq!((length, end), (12, 21)),
            other => panic!("{other:?}"),
        }
        assert_eq!(reader.next_line().unwrap(), None);
        assert_eq!(
            reader.take_partial(),
            Some(Line::Text {
                bytes: b"three".to_vec(),
                end: 26
            })
        );
        // A reader opened at an offset resumes there.
        let mut again = LineReader::open(&path, 4, 8).unwrap();
        assert_eq!(
            again.next_line().unwrap(),
            Some(Line::Text {
                bytes: b"two".to_vec(),
                end: 8
            })
        );
    }

    #[test]
    fn a_compressed_copy_has_the_fingerprint_of_its_original() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.jsonl");
        std::fs::write(&plain, b"{\"id\":1}\n{\"id\":2}\n").unwrap();
        let gz = dir.path().join("a.jsonl.1.gz");
        let mut encoder =
            flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        encoder.write_all(&std::fs::read(&plain).unwrap()).unwrap();
        encoder.finish().unwrap();
        let fingerprint_plain = fingerprint(&plain).unwrap();
        assert!(fingerprint_plain.is_some());
        assert_eq!(fingerprint(&gz).unwrap(), fingerprint_plain);
        let mut reader = LineReader::open(&gz, 9, 1024).unwrap();
        assert_eq!(
            reader.next_line().unwrap(),
            Some(Line::Text {
                bytes: b"{\"id\":2}".to_vec(),
                end: 18
            })
        );
        // No complete first line yet: no identity.
        let empty = dir.path().join("b.jsonl");
        std::fs::write(&empty, b"{\"partial").unwrap();
        assert_eq!(fingerprint(&empty).unwrap(), None);
    }
}
