//! Disk use of a RocksDB directory by column family, read from the files
//! themselves (no RocksDB library): every `.sst` file names its column
//! family in its properties block, as the entry
//! `rocksdb.column.family.name`, right after `rocksdb.column.family.id`.
//!
//! Block entries are `varint shared, varint non_shared, varint value_len,
//! key[shared..], value`; the properties block keys are sorted, so the name
//! entry follows the id entry (whose value is a varint).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The column family an SST file's bytes (or their tail holding the
/// properties block) belong to.
pub fn column_family(bytes: &[u8]) -> Option<String> {
    const ID: &[u8] = b"column.family.id";
    let p = bytes.windows(ID.len()).rposition(|w| w == ID)?;
    let mut pos = p + ID.len();
    varint(bytes, &mut pos)?; // the id
    let _shared = varint(bytes, &mut pos)?;
    let non_shared = varint(bytes, &mut pos)? as usize;
    let value_len = varint(bytes, &mut pos)? as usize;
    let key = bytes.get(pos..pos + non_shared)?;
    if !key.ends_with(b"name") {
        return None;
    }
    pos += non_shared;
    let name = bytes.get(pos..pos + value_len)?;
    String::from_utf8(name.to_vec()).ok()
}

/// Bytes per column family of the `.sst` files under `dirs`, plus `wal`
/// (RocksDB's `*.log` write-ahead logs) and `other` (MANIFEST, OPTIONS, info
/// logs, ...). SST files whose family cannot be read count as `unknown`.
pub fn usage(dirs: &[&Path]) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    for dir in dirs {
        let rd =
            std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for e in rd {
            let e = e?;
            let meta = e.metadata()?;
            if !meta.is_file() {
                continue;
            }
            let name = e.file_name().to_string_lossy().to_string();
            let key = if name.ends_with(".sst") {
                let bytes = std::fs::read(e.path())
                    .with_context(|| format!("cannot read {}", e.path().display()))?;
                column_family(&bytes).unwrap_or_else(|| "unknown".into())
            } else if name.ends_with(".log") && !name.starts_with("LOG") {
                "wal".into()
            } else {
                "other".into()
            };
            *out.entry(key).or_insert(0) += meta.len();
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_family_name_after_the_id() {
        // ... "rocksdb." shared, then "column.family.id" with value 3, then
        // 22 shared ("rocksdb.column.family."), "name", value "chunks".
        let mut b = b"junk rocksdb.comparator".to_vec();
        b.extend_from_slice(&[8, 16, 1]);
        b.extend_from_slice(b"column.family.id");
        b.push(3);
        b.extend_from_slice(&[22, 4, 6]);
        b.extend_from_slice(b"name");
        b.extend_from_slice(b"chunks");
        b.extend_from_slice(b"more entries");
        assert_eq!(column_family(&b).as_deref(), Some("chunks"));
        assert_eq!(column_family(b"no properties here"), None);
        // Truncated after the id.
        let cut = b.len() - 18;
        assert_eq!(column_family(&b[..cut]), None);
    }

    #[test]
    fn varints() {
        let mut pos = 0;
        assert_eq!(varint(&[0xac, 0x02, 7], &mut pos), Some(300));
        assert_eq!(pos, 2);
        assert_eq!(varint(&[0x80], &mut 0), None);
    }
}
