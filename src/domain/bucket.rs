//! Sticky bucketing: which rollout variant a `targetingKey` gets, the same on every isolate,
//! in every location and across deploys, with no storage and no state.
//!
//! # The hash
//!
//! SipHash-2-4 (Aumasson and Bernstein, 2012) with a fixed, public 128-bit key
//! ([`BUCKET_KEY`]), implemented here in integer arithmetic only, so its output depends on
//! nothing but its input bytes. The tests check it against the reference test vectors
//! published with the algorithm. It is not used as a secret-keyed MAC: it is a well-mixed,
//! stable 64-bit hash.
//!
//! # The choice: weighted rendezvous
//!
//! For a flag `f`, a key `k` and each variant `v` with a share `w_v > 0`:
//!
//! 1. `h_v = SipHash-2-4(BUCKET_KEY, f ‖ 0x00 ‖ v ‖ 0x00 ‖ k)` (UTF-8 bytes). Flag and
//!    variant names never contain `0x00`, so the message is unambiguous; the flag name salts
//!    the hash, so two flags' rollouts are independent.
//! 2. `u_v = (h_v + 1) / 2^64`, uniform in `(0, 1]`, and its score `−log2(u_v) / w_v`,
//!    computed in fixed point (32 fractional bits) and compared by cross-multiplying in
//!    128-bit integers: no floating point anywhere.
//! 3. The variant with the lowest score wins (ties, which need equal 64-bit hashes, go to
//!    the smaller name).
//!
//! `−log2(u_v)` is exponentially distributed, and the smallest of independent exponentials
//! with rates `w_v` is `v` with probability `w_v / Σw`: each variant gets its share.
//!
//! # What moves when a rollout changes
//!
//! A key's variant depends only on the flag name, the key and the shares, never on the order
//! of the variants. Changing one variant's share `w_a` while the others keep their
//! proportions to each other changes only `a`'s score relative to the rest (the others'
//! scores all scale by one factor, which keeps their order), so raising `a` moves keys only
//! into `a`, and lowering it moves keys only out of `a`. With two variants (`30/70` to
//! `50/50`) every change is of this kind.
//!
//! No stateless scheme can promise more with three or more variants. Take shares
//! `X = (⅓, ⅓, ⅓)` of `a, b, c`, `Y = (⅓+ε, ⅓−ε, ⅓)` and `Z = (⅓+ε, ⅓, ⅓−ε)`. Going
//! `X → Y` may move only keys from `b` into `a`, `X → Z` only keys from `c` into `a`, and
//! `Y → Z` (raising `b`) none out of `a`, so `a`'s keys under `Y` and `Z` are the same set,
//! which must then be both `a`'s keys under `X` plus ε of `b`'s and plus ε of `c`'s:
//! impossible. Cumulative ranges over a fixed order break even the proportional case when
//! the shrinking variants are not adjacent; rendezvous does not.

/// The SipHash key of sticky bucketing: the ASCII bytes of `"edgestate flags!"` read as
/// two little-endian 64-bit words. Changing it reassigns every key: never change it.
pub const BUCKET_KEY: (u64, u64) = (
    u64::from_le_bytes(*b"edgestat"),
    u64::from_le_bytes(*b"e flags!"),
);

/// SipHash-2-4, fed in pieces. Cloning a state that has absorbed a common prefix saves
/// hashing that prefix again.
#[derive(Debug, Clone)]
pub struct SipHasher24 {
    v: [u64; 4],
    tail: u64,
    len: u64,
}

impl SipHasher24 {
    /// A hasher with the 128-bit key `(k0, k1)`.
    pub fn new(k0: u64, k1: u64) -> Self {
        SipHasher24 {
            v: [
                k0 ^ 0x736f_6d65_7073_6575,
                k1 ^ 0x646f_7261_6e64_6f6d,
                k0 ^ 0x6c79_6765_6e65_7261,
                k1 ^ 0x7465_6462_7974_6573,
            ],
            tail: 0,
            len: 0,
        }
    }

    fn round(&mut self) {
        let [v0, v1, v2, v3] = &mut self.v;
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    }

    fn block(&mut self, m: u64) {
        self.v[3] ^= m;
        self.round();
        self.round();
        self.v[0] ^= m;
    }

    /// Absorbs `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.tail |= u64::from(b) << (8 * (self.len % 8));
            self.len += 1;
            if self.len.is_multiple_of(8) {
                let m = std::mem::take(&mut self.tail);
                self.block(m);
            }
        }
    }

    /// The 64-bit hash of everything absorbed.
    pub fn finish(mut self) -> u64 {
        let last = ((self.len & 0xff) << 56) | self.tail;
        self.block(last);
        self.v[2] ^= 0xff;
        for _ in 0..4 {
            self.round();
        }
        self.v[0] ^ self.v[1] ^ self.v[2] ^ self.v[3]
    }
}

/// SipHash-2-4 of `bytes` under `key`.
pub fn siphash24(key: (u64, u64), bytes: &[u8]) -> u64 {
    let mut h = SipHasher24::new(key.0, key.1);
    h.write(bytes);
    h.finish()
}

/// `−log2((h + 1) / 2^64)` in fixed point with 32 fractional bits: from 0 (for
/// `h = u64::MAX`) to 64 (for `h = 0`).
pub fn neg_log2_fixed(h: u64) -> u64 {
    let Some(x) = h.checked_add(1) else {
        return 0;
    };
    // x = m · 2^(63 − lz) with m in [1, 2), so −log2(x / 2^64) = lz + 1 − log2(m).
    let lz = x.leading_zeros();
    (u64::from(lz + 1) << 32) - log2_fraction(x << lz)
}

/// `log2(m)` in `[0, 1)` with 32 fractional bits, for `m` in 1.63 fixed point (top bit
/// set), by repeated squaring: each squaring that reaches 2 yields a 1 bit.
fn log2_fraction(m: u64) -> u64 {
    let mut y = u128::from(m);
    let mut bits = 0u64;
    for _ in 0..32 {
        y = (y * y) >> 63;
        bits <<= 1;
        if y >> 64 != 0 {
            y >>= 1;
            bits |= 1;
        }
    }
    bits
}

/// One variant of a rollout with its share, and the hash state of its salt
/// (`flag ‖ 0x00 ‖ variant ‖ 0x00`), computed once when the config is parsed.
#[derive(Debug, Clone)]
pub struct Share {
    /// The variant's name.
    pub variant: String,
    /// Its weight (a percentage in the config; any scale works).
    pub weight: u32,
    salted: SipHasher24,
}

impl Share {
    /// The share of `variant` in flag `flag`'s rollout.
    pub fn new(flag: &str, variant: &str, weight: u32) -> Self {
        let mut salted = SipHasher24::new(BUCKET_KEY.0, BUCKET_KEY.1);
        for part in [flag, variant] {
            salted.write(part.as_bytes());
            salted.write(&[0]);
        }
        Share {
            variant: variant.to_string(),
            weight,
            salted,
        }
    }

    /// `−log2(u)` of `key` for this variant (lower wins once divided by the weight).
    fn draw(&self, key: &str) -> u64 {
        let mut h = self.salted.clone();
        h.write(key.as_bytes());
        neg_log2_fixed(h.finish())
    }
}

/// The variant `key` gets: the lowest `draw / weight` among shares with a weight; `None`
/// when no share has one.
pub fn choose<'a>(shares: &'a [Share], key: &str) -> Option<&'a str> {
    let mut best: Option<(&Share, u64)> = None;
    for share in shares.iter().filter(|s| s.weight > 0) {
        let draw = share.draw(key);
        let wins = match best {
            None => true,
            Some((b, b_draw)) => {
                let mine = u128::from(draw) * u128::from(b.weight);
                let theirs = u128::from(b_draw) * u128::from(share.weight);
                mine < theirs || (mine == theirs && share.variant < b.variant)
            }
        };
        if wins {
            best = Some((share, draw));
        }
    }
    best.map(|(s, _)| s.variant.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::RngSeed;

    /// The reference vectors of SipHash-2-4 (the paper's appendix and the reference
    /// implementation's `vectors.h`): key 00..0f, message 00..(n−1).
    #[test]
    fn siphash_matches_the_published_vectors() {
        let key = (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
        let msg: Vec<u8> = (0u8..64).collect();
        let expected = [
            (0, 0x726f_db47_dd0e_0e31),
            (1, 0x74f8_39c5_93dc_67fd),
            (7, 0xab02_00f5_8b01_d137),
            (8, 0x93f5_f579_9a93_2462),
            (15, 0xa129_ca61_49be_45e5),
            (63, 0x958a_324c_eb06_4572),
        ];
        for (n, want) in expected {
            assert_eq!(siphash24(key, &msg[..n]), want, "length {n}");
        }
    }

    #[test]
    #[allow(deprecated)]
    fn siphash_agrees_with_the_standard_library_for_every_length() {
        use std::hash::Hasher;
        let key = (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
        let msg: Vec<u8> = (0u8..=255).rev().collect();
        for n in 0..msg.len() {
            let mut std = std::hash::SipHasher::new_with_keys(key.0, key.1);
            std.write(&msg[..n]);
            let mut pieces = SipHasher24::new(key.0, key.1);
            pieces.write(&msg[..n / 3]);
            pieces.write(&msg[n / 3..n]);
            assert_eq!(pieces.finish(), std.finish(), "length {n}");
        }
    }

    /// Published here so that any other implementation can check itself against ours.
    #[test]
    fn bucketing_vectors_are_stable() {
        assert_eq!(BUCKET_KEY, (0x7461_7473_6567_6465, 0x2173_6761_6c66_2065));
        // Step by step for flag "checkout", key "user-1", rollout {"on": 30, "off": 70}:
        let on = siphash24(BUCKET_KEY, b"checkout\0on\0user-1");
        let off = siphash24(BUCKET_KEY, b"checkout\0off\0user-1");
        assert_eq!((on, off), (0x26b5_189b_22e8_d17d, 0xd8c3_f2e3_b4e5_9a49));
        assert_eq!(
            (neg_log2_fixed(on), neg_log2_fixed(off)),
            (11_705_771_235, 1_030_831_457)
        );
        // 11705771235 / 30 > 1030831457 / 70: "off".
        let shares = [
            Share::new("checkout", "on", 30),
            Share::new("checkout", "off", 70),
        ];
        let got: Vec<&str> = ["user-1", "user-2", "user-3", "user-4", "user-5", ""]
            .iter()
            .map(|k| choose(&shares, k).unwrap())
            .collect();
        assert_eq!(got, BUCKET_VECTORS);
    }

    const BUCKET_VECTORS: [&str; 6] = ["off", "off", "off", "on", "off", "on"];

    #[test]
    fn neg_log2_is_exact_at_powers_of_two_and_monotone() {
        assert_eq!(neg_log2_fixed(u64::MAX), 0);
        assert_eq!(neg_log2_fixed(0), 64 << 32);
        assert_eq!(neg_log2_fixed((1 << 63) - 1), 1 << 32);
        assert_eq!(neg_log2_fixed((1 << 62) - 1), 2 << 32);
        // log2(3/4) = −0.415037499…
        let got = neg_log2_fixed(3 << 62) as f64 / (1u64 << 32) as f64;
        assert!((got - 0.415_037_499).abs() < 1e-8, "{got}");
        let mut last = u64::MAX;
        for i in 0..2048u64 {
            let n = neg_log2_fixed(i << 53);
            assert!(n <= last, "not monotone at {i}");
            last = n;
        }
    }

    #[test]
    fn no_weight_no_variant_and_a_full_share_takes_everything() {
        assert_eq!(choose(&[], "k"), None);
        assert_eq!(choose(&[Share::new("f", "a", 0)], "k"), None);
        let shares = [Share::new("f", "a", 0), Share::new("f", "b", 100)];
        assert!((0..500).all(|i| choose(&shares, &format!("k{i}")) == Some("b")));
    }

    #[test]
    fn variant_order_does_not_matter_and_flags_are_independent() {
        let ab = [Share::new("f", "a", 50), Share::new("f", "b", 50)];
        let ba = [Share::new("f", "b", 50), Share::new("f", "a", 50)];
        let other = [Share::new("g", "a", 50), Share::new("g", "b", 50)];
        let mut same_in_other_flag = 0;
        for i in 0..2000 {
            let k = format!("user-{i}");
            assert_eq!(choose(&ab, &k), choose(&ba, &k));
            same_in_other_flag += usize::from(choose(&ab, &k) == choose(&other, &k));
        }
        // Independent flags agree on about half of the keys.
        assert!(
            (900..1100).contains(&same_in_other_flag),
            "{same_in_other_flag}"
        );
    }

    fn shares(flag: &str, weights: &[u32]) -> Vec<Share> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| Share::new(flag, &format!("v{i}"), *w))
            .collect()
    }

    /// Percentages summing to 100 over 2 to 5 variants.
    fn rollout() -> impl Strategy<Value = Vec<u32>> {
        prop::collection::vec(1u32..100, 1..5).prop_map(|mut cuts| {
            cuts.sort_unstable();
            cuts.dedup();
            let mut last = 0;
            let mut out: Vec<u32> = cuts
                .iter()
                .map(|c| std::mem::replace(&mut last, *c))
                .collect();
            out.iter_mut().zip(&cuts).for_each(|(w, c)| *w = c - *w);
            out.push(100 - last);
            out
        })
    }

    fn fixed(cases: u32) -> ProptestConfig {
        ProptestConfig {
            cases,
            rng_seed: RngSeed::Fixed(0x5eed_f1a9),
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(fixed(64))]

        #[test]
        fn a_keys_variant_never_changes_while_the_rollout_is_unchanged(
            w in rollout(), key in "\\PC{0,40}", flag in "[a-z]{1,10}",
        ) {
            let s = shares(&flag, &w);
            let first = choose(&s, &key);
            prop_assert!(first.is_some());
            for _ in 0..3 {
                let again = shares(&flag, &w);
                prop_assert_eq!(choose(&again, &key), first);
            }
        }

        #[test]
        fn raising_one_variants_share_only_moves_keys_into_it(
            w in prop::collection::vec(1u32..50, 2..6), a in 0usize..6, extra in 1u32..200,
            keys in prop::collection::vec("[a-z0-9-]{1,16}", 200),
        ) {
            let a = a % w.len();
            let before = shares("f", &w);
            let mut raised = w.clone();
            raised[a] += extra;
            let after = shares("f", &raised);
            let target = format!("v{a}");
            for k in &keys {
                let (x, y) = (choose(&before, k).unwrap(), choose(&after, k).unwrap());
                prop_assert!(x == y || y == target, "{} moved {} → {}", k, x, y);
            }
        }

        #[test]
        fn two_variant_percentages_move_keys_only_into_the_one_raised(
            p in 0u32..100, q in 1u32..=100, keys in prop::collection::vec("\\PC{1,20}", 200),
        ) {
            let (lo, hi) = (p.min(q), p.max(q));
            prop_assume!(lo < hi);
            let before = [Share::new("f", "a", lo), Share::new("f", "b", 100 - lo)];
            let after = [Share::new("f", "a", hi), Share::new("f", "b", 100 - hi)];
            for k in &keys {
                let (x, y) = (choose(&before, k), choose(&after, k));
                prop_assert!(x == y || y == Some("a"), "{} moved {:?} → {:?}", k, x, y);
            }
        }
    }

    proptest! {
        #![proptest_config(fixed(6))]

        #[test]
        fn over_10000_random_keys_each_share_is_within_one_and_a_half_points(
            w in rollout(), keys in prop::collection::hash_set("[A-Za-z0-9_-]{4,24}", 10_000),
        ) {
            let s = shares("exp", &w);
            let mut counts = vec![0u32; w.len()];
            for k in &keys {
                let v = choose(&s, k).unwrap();
                counts[v[1..].parse::<usize>().unwrap()] += 1;
            }
            for (i, c) in counts.iter().enumerate() {
                let share = f64::from(*c) / 100.0;
                prop_assert!((share - f64::from(w[i])).abs() <= 1.5, "v{} got {}% of {}%", i, share, w[i]);
            }
        }
    }
}
