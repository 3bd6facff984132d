//! Per-request accounting of storage work, rendered as the contract's `Server-Timing` header:
//! `kv;desc="reads=R writes=W lists=L deletes=D";dur=MS, d1;desc="queries=Q";dur=MS,
//! d1-primary;desc="queries=P";dur=MS`: of the `Q` D1 statements, `P` were served by the
//! primary database (the one round trip that grows with the distance to it), as D1 reports
//! each result (`meta.served_by_primary`; a runtime that does not say counts what was sent
//! to the primary).
//! Every KV and D1 call goes through an adapter that records itself here. Work deferred with
//! `waitUntil` uses a detached meter, so it is not counted (the header is already sent).

use std::cell::Cell;
use std::fmt;

/// A kind of KV operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvOp {
    /// `get`, a bulk `get`, or `getWithMetadata` (whether or not the value is read).
    Read,
    /// `put`.
    Write,
    /// `list`.
    List,
    /// `delete`.
    Delete,
}

/// The storage work of one request.
#[derive(Debug, Default)]
pub struct Meter {
    kv: [Cell<u32>; 4],
    kv_ms: Cell<f64>,
    d1_queries: Cell<u32>,
    d1_ms: Cell<f64>,
    d1_primary: Cell<u32>,
    d1_primary_ms: Cell<f64>,
}

impl Meter {
    /// Records one KV operation that took `ms`.
    pub fn kv(&self, op: KvOp, ms: f64) {
        let cell = &self.kv[op as usize];
        cell.set(cell.get() + 1);
        self.kv_time(ms);
    }

    /// Adds `ms` to the KV time of an operation already counted (a value read after its
    /// metadata).
    pub fn kv_time(&self, ms: f64) {
        self.kv_ms.set(self.kv_ms.get() + ms.max(0.0));
    }

    /// Records one D1 statement that took `ms`, and whether the primary served it.
    pub fn d1(&self, ms: f64, primary: bool) {
        self.d1_queries.set(self.d1_queries.get() + 1);
        self.d1_ms.set(self.d1_ms.get() + ms.max(0.0));
        if primary {
            self.d1_primary.set(self.d1_primary.get() + 1);
            self.d1_primary_ms
                .set(self.d1_primary_ms.get() + ms.max(0.0));
        }
    }

    /// KV operations of one kind so far.
    pub fn kv_count(&self, op: KvOp) -> u32 {
        self.kv[op as usize].get()
    }

    /// D1 statements so far.
    pub fn d1_count(&self) -> u32 {
        self.d1_queries.get()
    }

    /// D1 statements the primary served so far.
    pub fn d1_primary_count(&self) -> u32 {
        self.d1_primary.get()
    }

    /// The `Server-Timing` header value.
    pub fn server_timing(&self) -> String {
        format!(
            "kv;desc=\"reads={} writes={} lists={} deletes={}\";dur={}, d1;desc=\"queries={}\";dur={}, \
             d1-primary;desc=\"queries={}\";dur={}",
            self.kv_count(KvOp::Read),
            self.kv_count(KvOp::Write),
            self.kv_count(KvOp::List),
            self.kv_count(KvOp::Delete),
            Tenths(self.kv_ms.get()),
            self.d1_queries.get(),
            Tenths(self.d1_ms.get()),
            self.d1_primary.get(),
            Tenths(self.d1_primary_ms.get())
        )
    }
}

/// Milliseconds with one decimal, rounded half up, formatted as integers: `{:.1}` would link
/// the float formatting machinery of `core` (about 20 KB of Wasm) for this one header.
struct Tenths(f64);

impl fmt::Display for Tenths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Saturating: NaN and negatives are 0, absurdly long durations stop at u64::MAX tenths.
        let tenths = (self.0 * 10.0 + 0.5) as u64;
        write!(f, "{}.{}", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_meter_reports_zeroes_in_contract_format() {
        assert_eq!(
            Meter::default().server_timing(),
            "kv;desc=\"reads=0 writes=0 lists=0 deletes=0\";dur=0.0, d1;desc=\"queries=0\";dur=0.0, \
             d1-primary;desc=\"queries=0\";dur=0.0"
        );
    }

    #[test]
    fn counts_each_kind_and_sums_durations() {
        let m = Meter::default();
        m.kv(KvOp::Read, 1.5);
        m.kv(KvOp::Read, 1.0);
        m.kv(KvOp::Write, 2.0);
        m.kv(KvOp::Delete, 0.0);
        m.d1(4.25, false);
        m.d1(1.0, true);
        assert_eq!(
            m.server_timing(),
            "kv;desc=\"reads=2 writes=1 lists=0 deletes=1\";dur=4.5, d1;desc=\"queries=2\";dur=5.3, \
             d1-primary;desc=\"queries=1\";dur=1.0"
        );
    }

    #[test]
    fn durations_have_one_decimal() {
        let cases = [
            (0.0, "0.0"),
            (0.04, "0.0"),
            (0.05, "0.1"),
            (1.0, "1.0"),
            (12.345, "12.3"),
            (99.96, "100.0"),
            (-3.0, "0.0"),
            (f64::NAN, "0.0"),
        ];
        for (ms, text) in cases {
            assert_eq!(Tenths(ms).to_string(), text, "{ms}");
        }
    }
}
