//! Chunk bytes written by earlier versions of the encoder still decode to
//! the same samples: encodings only ever grow.
//!
//! Each file in `testdata/chunks/` holds the chunks one version of the
//! encoder wrote for a fixed set of series, as text records:
//!
//! ```text
//! # comment
//! chunk <name> encoding <1|2>
//! bytes <hex, up to 96 digits a line>
//! sample <t> <value bits as 16 hex digits>
//! <blank line>
//! ```
//!
//! A new file is added (never rewritten) whenever the encoder's output
//! changes; its name says which commit wrote it. The records come from the
//! chunk bench's data shapes and a few edge cases (stale markers, -0.0,
//! ±Inf, NaN, subnormals, negative and extreme times, one sample, none).

use std::path::Path;

use model::Sample;
use storage::chunk::{decode, decode_into, header, ChunkEncoder, ChunkIter};

struct Record {
    name: String,
    encoding: u8,
    bytes: Vec<u8>,
    samples: Vec<(i64, u64)>,
}

/// Fails the test on a line that does not parse.
fn bad<T>(n: usize, line: &str) -> T {
    panic!("line {}: cannot parse {line:?}", n + 1)
}

fn parse(text: &str) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            [first, ..] if first.starts_with('#') => {}
            ["chunk", name, "encoding", e] => out.push(Record {
                name: name.to_string(),
                encoding: e.parse().unwrap_or_else(|_| bad(n, line)),
                bytes: Vec::new(),
                samples: Vec::new(),
            }),
            ["bytes", hex] => {
                let r = out.last_mut().unwrap_or_else(|| bad(n, line));
                for pair in hex.as_bytes().chunks(2) {
                    let s = std::str::from_utf8(pair).unwrap_or_else(|_| bad(n, line));
                    r.bytes
                        .push(u8::from_str_radix(s, 16).unwrap_or_else(|_| bad(n, line)));
                }
            }
            ["sample", t, v] => {
                let r = out.last_mut().unwrap_or_else(|| bad(n, line));
                let t = t.parse().unwrap_or_else(|_| bad(n, line));
                let v = u64::from_str_radix(v, 16).unwrap_or_else(|_| bad(n, line));
                r.samples.push((t, v));
            }
            _ => bad(n, line),
        }
    }
    out
}

fn check(r: &Record, file: &str) {
    let what = format!("{file}: chunk {}", r.name);
    assert_eq!(r.bytes.first(), Some(&r.encoding), "{what}: encoding byte");
    let h = header(&r.bytes).unwrap_or_else(|e| panic!("{what}: header: {e}"));
    assert_eq!(h.count, r.samples.len(), "{what}: count");
    let bits = |s: Vec<(i64, f64)>| -> Vec<(i64, u64)> {
        s.into_iter().map(|(t, v)| (t, v.to_bits())).collect()
    };
    let got = decode(&r.bytes).unwrap_or_else(|e| panic!("{what}: decode: {e}"));
    assert_eq!(bits(got), r.samples, "{what}: decode");
    let mut fast: Vec<Sample> = Vec::new();
    decode_into(&r.bytes, &mut fast).unwrap_or_else(|e| panic!("{what}: decode_into: {e}"));
    let fast: Vec<(i64, u64)> = fast.iter().map(|s| (s.t, s.v.to_bits())).collect();
    assert_eq!(fast, r.samples, "{what}: decode_into");
    let iter: Result<Vec<(i64, f64)>, _> = ChunkIter::new(&r.bytes)
        .unwrap_or_else(|e| panic!("{what}: ChunkIter: {e}"))
        .collect();
    assert_eq!(
        bits(iter.unwrap_or_else(|e| panic!("{what}: ChunkIter: {e}"))),
        r.samples
    );
    // The current encoder takes the chunk up again where it was left.
    let enc =
        ChunkEncoder::from_bytes(&r.bytes).unwrap_or_else(|e| panic!("{what}: from_bytes: {e}"));
    let again = decode(&enc.bytes()).unwrap_or_else(|e| panic!("{what}: re-encoded: {e}"));
    assert_eq!(bits(again), r.samples, "{what}: re-encoded");
}

#[test]
fn chunks_of_every_version_decode() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/chunks");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    files.sort();
    assert!(
        files.len() >= 2,
        "expected a file per encoder version in {}",
        dir.display()
    );
    let mut encodings = [0; 3];
    for path in &files {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let records = parse(&text);
        assert!(!records.is_empty(), "{}: no chunks", path.display());
        for r in &records {
            check(r, &path.display().to_string());
            encodings[usize::from(r.encoding.min(2))] += 1;
        }
    }
    // Both encodings are covered.
    assert!(encodings[1] > 0 && encodings[2] > 0, "{encodings:?}");
}
