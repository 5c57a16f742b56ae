//! Digests as the manifest and the reports write them: SHA-256 of files (inputs, outputs,
//! program files) and lower-case hex (the manifest's hashes, run ids, stable row ids).

use sha2::{Digest, Sha256};

/// SHA-256 of `bytes`, in lower-case hex (the manifest's form).
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha256_hex_of_parts([bytes])
}

/// [`sha256_hex`] of the concatenation of `parts`, without concatenating them.
pub(crate) fn sha256_hex_of_parts<'p>(parts: impl IntoIterator<Item = &'p [u8]>) -> String {
    let mut h = Sha256::new();
    parts.into_iter().for_each(|p| h.update(p));
    hex(&h.finalize())
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut digits = vec![0; 2 * bytes.len()];
    hex_into(bytes, &mut digits);
    String::from_utf8(digits).expect("hex digits are ASCII")
}

/// Lower-case hex of `bytes` into `out` (twice as long).
pub(crate) fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]]);
    }
}
