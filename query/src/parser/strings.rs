//! PromQL string literals: `"..."` and `'...'` with Go escapes (`\n`,
//! `\x41`, `\101`, `\u00e9`, `\U0001F600`), and raw `` `...` `` strings.
//! The unescaped bytes must be valid UTF-8 (Go allows any bytes; Rust
//! strings cannot hold them).

use super::ParseError;

/// Lexes and unquotes a string starting at `start` (on the quote).
/// Returns the value and the end offset.
pub(crate) fn lex_string(src: &str, start: usize) -> Result<(String, usize), ParseError> {
    let quote = src[start..].chars().next().unwrap_or('"');
    let body_start = start + 1;
    if quote == '`' {
        return match src[body_start..].find('`') {
            Some(n) => Ok((
                src[body_start..body_start + n].to_string(),
                body_start + n + 1,
            )),
            None => Err(ParseError::new(start, "unterminated raw string")),
        };
    }
    let mut out: Vec<u8> = Vec::new();
    let mut it = src[body_start..].char_indices();
    while let Some((off, c)) = it.next() {
        let pos = body_start + off;
        match c {
            '\n' => return Err(ParseError::new(start, "unterminated quoted string")),
            c if c == quote => {
                let value = String::from_utf8(out).map_err(|e| {
                    ParseError::new(
                        start,
                        format!("invalid UTF-8 in string {}: {e}", &src[start..pos + 1]),
                    )
                })?;
                return Ok((value, pos + 1));
            }
            '\\' => unescape(&mut it, quote, &mut out, pos)?,
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    Err(ParseError::new(start, "unterminated quoted string"))
}

/// Handles one Go escape sequence after a backslash.
fn unescape(
    it: &mut std::str::CharIndices<'_>,
    quote: char,
    out: &mut Vec<u8>,
    pos: usize,
) -> Result<(), ParseError> {
    let err = |m: &str| ParseError::new(pos, m.to_string());
    let c = match it.next() {
        Some((_, c)) => c,
        None => return Err(err("escape sequence not terminated")),
    };
    let simple = match c {
        'a' => Some(0x07),
        'b' => Some(0x08),
        'f' => Some(0x0c),
        'n' => Some(b'\n'),
        'r' => Some(b'\r'),
        't' => Some(b'\t'),
        'v' => Some(0x0b),
        '\\' => Some(b'\\'),
        c if c == quote => Some(c as u8),
        _ => None,
    };
    if let Some(b) = simple {
        out.push(b);
        return Ok(());
    }
    let (n, base, first) = match c {
        '0'..='7' => (3, 8, Some(c)),
        'x' => (2, 16, None),
        'u' => (4, 16, None),
        'U' => (8, 16, None),
        '\n' => return Err(err("unterminated quoted string")),
        other => return Err(err(&format!("unknown escape sequence {}", go_rune(other)))),
    };
    let mut x: u32 = 0;
    let mut digits = first
        .into_iter()
        .chain(std::iter::from_fn(|| it.next().map(|(_, c)| c)));
    for _ in 0..n {
        let d = digits
            .next()
            .ok_or_else(|| err("escape sequence not terminated"))?;
        let v = d.to_digit(base).ok_or_else(|| {
            err(&format!(
                "illegal character {} in escape sequence",
                go_rune(d)
            ))
        })?;
        x = x * base + v;
    }
    if c == 'x' || base == 8 {
        if x > 255 {
            return Err(err("escape sequence is an invalid Unicode code point"));
        }
        out.push(x as u8);
    } else {
        let ch = char::from_u32(x)
            .ok_or_else(|| err("escape sequence is an invalid Unicode code point"))?;
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    }
    Ok(())
}

/// Go's `%#U` of a rune: `U+0063 'c'`.
fn go_rune(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{c}'", c as u32)
    }
}
