//! The checksum algorithms a manifest may name, and one hasher that computes several of
//! them in a single pass over a file.

use std::io::{self, Read};

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

/// A manifest's algorithm, by its normalized name (RFC 8493 §2.4: lowercase, only
/// letters and digits). Ordered from weakest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Md5,
        Algorithm::Sha1,
        Algorithm::Sha224,
        Algorithm::Sha256,
        Algorithm::Sha384,
        Algorithm::Sha512,
    ];

    /// The name in `manifest-<name>.txt`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5",
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha224 => "sha224",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Digest length in bytes (a manifest holds twice as many hex digits).
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Md5 => 16,
            Algorithm::Sha1 => 20,
            Algorithm::Sha224 => 28,
            Algorithm::Sha256 => 32,
            Algorithm::Sha384 => 48,
            Algorithm::Sha512 => 64,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

enum State {
    Md5(Md5),
    Sha1(Sha1),
    Sha224(Sha224),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl State {
    fn new(algorithm: Algorithm) -> State {
        match algorithm {
            Algorithm::Md5 => State::Md5(Md5::new()),
            Algorithm::Sha1 => State::Sha1(Sha1::new()),
            Algorithm::Sha224 => State::Sha224(Sha224::new()),
            Algorithm::Sha256 => State::Sha256(Sha256::new()),
            Algorithm::Sha384 => State::Sha384(Sha384::new()),
            Algorithm::Sha512 => State::Sha512(Sha512::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            State::Md5(h) => h.update(data),
            State::Sha1(h) => h.update(data),
            State::Sha224(h) => h.update(data),
            State::Sha256(h) => h.update(data),
            State::Sha384(h) => h.update(data),
            State::Sha512(h) => h.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            State::Md5(h) => h.finalize().to_vec(),
            State::Sha1(h) => h.finalize().to_vec(),
            State::Sha224(h) => h.finalize().to_vec(),
            State::Sha256(h) => h.finalize().to_vec(),
            State::Sha384(h) => h.finalize().to_vec(),
            State::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// Each algorithm with the digest it computed.
pub type Digests = Vec<(Algorithm, Vec<u8>)>;

/// Chunks at least this large are hashed with each algorithm on its own rayon task, so a
/// single large file still uses every core when a bag has several manifests.
const SPLIT_AT: usize = 256 * 1024;

/// Several digests of one stream, fed once.
pub struct MultiHasher {
    states: Vec<(Algorithm, State)>,
}

impl MultiHasher {
    pub fn new(algorithms: &[Algorithm]) -> MultiHasher {
        MultiHasher {
            states: algorithms.iter().map(|&a| (a, State::new(a))).collect(),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        update_all(&mut self.states, data);
    }

    /// Each algorithm with its digest, in the order given to [`MultiHasher::new`].
    pub fn finish(self) -> Digests {
        self.states
            .into_iter()
            .map(|(a, state)| (a, state.finish()))
            .collect()
    }
}

fn update_all(states: &mut [(Algorithm, State)], data: &[u8]) {
    if states.len() > 1 && data.len() >= SPLIT_AT {
        let (left, right) = states.split_at_mut(states.len() / 2);
        rayon::join(|| update_all(left, data), || update_all(right, data));
    } else {
        for (_, state) in states {
            state.update(data);
        }
    }
}

/// Every digest of what `reader` yields, read once through `buf`, and the byte count.
pub fn hash_reader(
    reader: &mut dyn Read,
    algorithms: &[Algorithm],
    buf: &mut [u8],
) -> io::Result<(Digests, u64)> {
    let mut hasher = MultiHasher::new(algorithms);
    let mut total = 0u64;
    loop {
        let n = match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hasher.finish(), total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::hex;

    #[test]
    fn known_vectors_in_one_pass() {
        let expected = [
            (Algorithm::Md5, "900150983cd24fb0d6963f7d28e17f72"),
            (Algorithm::Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                Algorithm::Sha224,
                "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
            ),
            (
                Algorithm::Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                Algorithm::Sha384,
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
            ),
            (
                Algorithm::Sha512,
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            ),
        ];
        let mut buf = [0u8; 2];
        let (digests, len) = hash_reader(&mut &b"abc"[..], &Algorithm::ALL, &mut buf).unwrap();
        assert_eq!(len, 3);
        for ((alg, digest), (want_alg, want)) in digests.iter().zip(expected) {
            assert_eq!(*alg, want_alg);
            assert_eq!(hex(digest), want, "{alg}");
            assert_eq!(digest.len(), alg.digest_len());
            assert_eq!(Algorithm::from_name(alg.name()), Some(*alg));
        }
        // Large chunks take the parallel path; the digests are the same.
        let big = vec![0x5au8; 3 * SPLIT_AT + 7];
        let mut buf = vec![0u8; 2 * SPLIT_AT];
        let (split, _) = hash_reader(&mut &big[..], &Algorithm::ALL, &mut buf).unwrap();
        let mut small = [0u8; 1000];
        let (whole, _) = hash_reader(&mut &big[..], &Algorithm::ALL, &mut small).unwrap();
        assert_eq!(split, whole);
    }
}
