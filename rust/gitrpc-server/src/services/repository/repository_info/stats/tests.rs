//! Headers and pool paths.

use super::*;

#[test]
fn object_pools() {
    let h = format!("aabb{}", "0".repeat(60));
    assert!(is_object_pool(&format!("@pools/aa/bb/{h}.git")));
    assert!(is_object_pool(&format!("x/@pools/aa/bb/{h}.git")));
    assert!(!is_object_pool(&format!("@pools/aa/bc/{h}.git")));
    assert!(!is_object_pool(&format!("@pools/aa/bb/{h}")));
    assert!(is_object_pool("@cluster/pools/0a/ff/12"));
    assert!(!is_object_pool("@cluster/repositories/0a/ff/12"));
    assert!(!is_object_pool("@cluster/pools/0a/ff/1x"));
    assert!(!is_object_pool("group/project.git"));
}

#[test]
fn headers() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("b");
    std::fs::write(&p, [b'B', b'I', b'T', b'M', 0, 1, 0, 0x14]).unwrap();
    assert_eq!(
        bitmap(&p).unwrap(),
        Bitmap {
            version: 1,
            has_hash_cache: true,
            has_lookup_table: true
        }
    );
    std::fs::write(&p, b"BITX\0\x01\0\0").unwrap();
    assert!(bitmap(&p)
        .unwrap_err()
        .to_string()
        .contains("invalid bitmap signature"));
    std::fs::write(&p, b"BIT").unwrap();
    assert!(bitmap(&p).is_err());
    let mut m = b"MIDX\x01\x01\x02\0\0\0\0\x03".to_vec();
    m.extend_from_slice(b"LOFF\0\0\0\0\0\0\0\0RIDX\0\0\0\0\0\0\0\0");
    std::fs::write(&p, &m).unwrap();
    assert_eq!(
        midx(&p).unwrap(),
        Midx {
            version: 1,
            packfile_count: 3,
            has_large_offsets: true,
            has_bitmapped_packs: false,
            has_reverse_index: true
        }
    );
    // A FIFO is refused, not waited on.
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(bitmap(&fifo).is_err());
}
