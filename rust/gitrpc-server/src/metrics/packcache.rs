//! The pack-objects cache's metrics (`crate::packcache` counts into them as things happen).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Result {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Source {
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

/// How a request found the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A finished pack was served from its file.
    Hit,
    /// A pack being generated for an identical request was joined.
    Coalesced,
    /// Nothing usable: a generation was started.
    Miss,
    /// A protocol-v2 fetch answered by the server from the cache, without upload-pack
    /// relaying the pack (`crate::packcache::direct`).
    HitDirect,
}

impl Lookup {
    pub fn as_str(self) -> &'static str {
        match self {
            Lookup::Hit => "hit",
            Lookup::Coalesced => "coalesced",
            Lookup::Miss => "miss",
            Lookup::HitDirect => "hit_direct",
        }
    }
}

/// Counters, gauges and the generation-time histogram of one server's cache.
#[derive(Clone)]
pub struct PackCacheMetrics {
    pub lookups: Family<Result, Counter>,
    pub served_bytes: Family<Source, Counter>,
    pub generated_bytes: Counter,
    pub entries: Gauge,
    pub disk_bytes: Gauge,
    pub readers: Gauge,
    pub evictions: Family<Reason, Counter>,
    pub generations: Family<Result, Counter>,
    pub generation_seconds: Histogram,
    pub fallbacks: Family<Reason, Counter>,
}

impl Default for PackCacheMetrics {
    fn default() -> Self {
        let m = PackCacheMetrics {
            lookups: Family::default(),
            served_bytes: Family::default(),
            generated_bytes: Counter::default(),
            entries: Gauge::default(),
            disk_bytes: Gauge::default(),
            readers: Gauge::default(),
            evictions: Family::default(),
            generations: Family::default(),
            generation_seconds: Histogram::new(super::LATENCY_BUCKETS.iter().copied()),
            fallbacks: Family::default(),
        };
        // Every series exists from the start (at zero), so dashboards and tests see them.
        for l in [
            Lookup::Hit,
            Lookup::Coalesced,
            Lookup::Miss,
            Lookup::HitDirect,
        ] {
            m.lookup(l);
        }
        for source in ["cache", "generated", "direct"] {
            let _ = m.served_bytes.get_or_create(&Source { source });
        }
        for reason in [
            "max_age",
            "max_bytes",
            "min_occurrences",
            "failed",
            "invalidated",
        ] {
            let _ = m.evictions.get_or_create(&Reason { reason });
        }
        for result in ["ok", "failed", "refused"] {
            let _ = m.generations.get_or_create(&Result { result });
        }
        for reason in ["enospc", "min_free_disk", "create", "io"] {
            let _ = m.fallbacks.get_or_create(&Reason { reason });
        }
        m
    }
}

impl PackCacheMetrics {
    /// The counter of `lookup` (created at zero if new).
    fn lookup(&self, lookup: Lookup) -> Counter {
        self.lookups
            .get_or_create(&Result {
                result: lookup.as_str(),
            })
            .clone()
    }

    pub fn lookup_count(&self, lookup: Lookup) -> u64 {
        self.lookup(lookup).get()
    }

    pub fn served_count(&self, source: &'static str) -> u64 {
        self.served_bytes.get_or_create(&Source { source }).get()
    }

    pub fn looked_up(&self, lookup: Lookup) {
        self.lookup(lookup).inc();
    }

    /// `n` pack bytes handed to a hook (`source`: "generated" to the request that caused
    /// the miss, else "cache") or to a client by the fast path ("direct").
    pub fn served(&self, n: u64, source: &'static str) {
        self.served_bytes
            .get_or_create(&Source { source })
            .inc_by(n);
    }

    pub fn evicted(&self, reason: &'static str) {
        self.evictions.get_or_create(&Reason { reason }).inc();
    }

    pub fn generated(&self, result: &'static str, seconds: f64) {
        self.generations.get_or_create(&Result { result }).inc();
        if result != "refused" {
            self.generation_seconds.observe(seconds);
        }
    }

    pub fn fell_back(&self, reason: &'static str) {
        self.fallbacks.get_or_create(&Reason { reason }).inc();
    }

    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "gitrpc_pack_objects_cache_lookups",
            "Pack requests by how the pack-objects cache answered (hit, coalesced, miss; hit_direct: a v2 fetch served without upload-pack relaying the pack)",
            self.lookups.clone(),
        );
        r.register(
            "gitrpc_pack_objects_served_bytes",
            "Pack bytes handed to upload-pack, by source (cache; generated: to the request that caused the miss), or straight to clients (direct)",
            self.served_bytes.clone(),
        );
        r.register(
            "gitrpc_pack_objects_generated_bytes",
            "Pack bytes written by pack-objects runs of the cache",
            self.generated_bytes.clone(),
        );
        r.register(
            "gitrpc_pack_objects_cache_entries",
            "Entries in the cache's index (kept and in flight)",
            self.entries.clone(),
        );
        r.register(
            "gitrpc_pack_objects_cache_disk_bytes",
            "Bytes of the cache's pack files on disk (entries still being read included)",
            self.disk_bytes.clone(),
        );
        r.register(
            "gitrpc_pack_objects_cache_readers",
            "Hook invocations reading a cached or generating pack now",
            self.readers.clone(),
        );
        r.register(
            "gitrpc_pack_objects_cache_evictions",
            "Entries dropped from the cache, by reason",
            self.evictions.clone(),
        );
        r.register(
            "gitrpc_pack_objects_generations",
            "pack-objects runs of the cache, by result (ok, failed, refused by [pack_objects_limiting])",
            self.generations.clone(),
        );
        r.register(
            "gitrpc_pack_objects_generation_seconds",
            "Time from a miss to the end of its pack-objects run (queueing for a slot included)",
            self.generation_seconds.clone(),
        );
        r.register(
            "gitrpc_pack_objects_cache_fallbacks",
            "Packs streamed to their readers without being stored, by reason (enospc, min_free_disk, create, io)",
            self.fallbacks.clone(),
        );
    }
}
