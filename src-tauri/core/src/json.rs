//! Writing JSON text fast, for the cache file and the endpoint's token answers: a string that
//! needs no escaping (tokens, ids, URLs: nearly every string tokentray writes) is copied whole,
//! where serde_json looks up every byte in its escape table (most of the time it took to write
//! a 25 MB cache). What is written is byte for byte what serde_json writes.

/// Appends `s` as a JSON string, exactly as `serde_json::to_writer` would.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        // Writing to a Vec cannot fail; keep the JSON whole regardless.
        if serde_json::to_writer(&mut *out, s).is_err() {
            out.extend_from_slice(b"\"\"");
        }
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Whether `bytes` holds a control character, `"` or `\`, which JSON strings escape. Checked 64
/// bytes at a time with no early exit inside a block, so that the compiler compares whole
/// vectors and tests the block once (a third fewer instructions than 16-byte blocks, measured
/// with callgrind on a 1.6 KB token; it is on the path of every token served).
fn needs_escape(bytes: &[u8]) -> bool {
    let escapes = |block: &[u8]| {
        block.iter().fold(false, |seen, &b| {
            seen | (b < 0x20) | (b == b'"') | (b == b'\\')
        })
    };
    let mut blocks = bytes.chunks_exact(64);
    for block in blocks.by_ref() {
        if escapes(block) {
            return true;
        }
    }
    escapes(blocks.remainder())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let awkward = [
            "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJodHRwczovL21hbmFnZW1lbnQuYXp1cmUuY29tLyJ9.c2ln-_",
            "",
            "quote \" and backslash \\ and slash /",
            "line\nbreak\ttab\u{1}\u{1f}",
            "caf\u{e9} \u{1f600} \u{7f}",
            "https://management.azure.com/",
            // Escapes at either end.
            "0123456789abcdef0123456789abcde\"",
            "\\123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef\u{0}",
        ];
        for value in awkward {
            let mut ours = Vec::new();
            write_str(&mut ours, value);
            let theirs = serde_json::to_vec(value).unwrap_or_default();
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            );
        }
        // In every position of the 64-byte blocks and of the remainder; bytes that look close.
        for at in 0..150 {
            for bad in [b'"', b'\\', b'\n', 0x1f, 0] {
                let mut bytes = vec![b'a'; 150];
                bytes[at] = bad;
                assert!(needs_escape(&bytes), "{at} {bad}");
            }
            assert!(!needs_escape(&vec![b'a'; at]));
            assert!(!needs_escape(
                &[b' ', b'!', b'#', b'[', b']', 0x7f, 0x80, 0xff].repeat(at)
            ));
        }
    }
}
