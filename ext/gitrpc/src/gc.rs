//! A Ruby VALUE held by a Rust object: marked movable, and updated when `GC.compact` moves
//! it. (Marking movable without updating in `compact` would leave a dangling reference.)

use std::cell::Cell;

use magnus::value::{Opaque, ReprValue};
use magnus::{Ruby, Value};

pub struct Held(Cell<Opaque<Value>>);

// SAFETY: only read or written with the GVL held (methods take `&Ruby`; mark and compact run
// inside the GC), so never concurrently.
unsafe impl Sync for Held {}

impl Held {
    pub fn new(v: impl ReprValue) -> Held {
        Held(Cell::new(Opaque::from(v.as_value())))
    }

    pub fn get(&self, ruby: &Ruby) -> Value {
        ruby.get_inner(self.0.get())
    }

    pub fn mark(&self, marker: &magnus::gc::Marker) {
        marker.mark_movable(self.0.get());
    }

    pub fn compact(&self, compactor: &magnus::gc::Compactor) {
        self.0.set(compactor.location(self.0.get()));
    }
}
