//! Layout and round-trip tests of the info records (offsets as Zircon's C structs).

use super::*;
use core::mem::{align_of, offset_of, size_of};

fn roundtrip<T: Wire + PartialEq + core::fmt::Debug + Copy>(value: T) -> Vec<u8> {
    let mut buf = vec![0xAAu8; T::SIZE + 8];
    value.encode(&mut buf);
    assert_eq!(
        &buf[T::SIZE..],
        &[0xAA; 8],
        "encode writes exactly SIZE bytes"
    );
    assert_eq!(T::decode(&buf), value);
    assert_eq!(T::SIZE, size_of::<T>());
    assert_eq!(T::ALIGN, align_of::<T>());
    buf.truncate(T::SIZE);
    buf
}

fn at<const N: usize>(buf: &[u8], off: usize) -> [u8; N] {
    buf[off..off + N].try_into().unwrap()
}

#[test]
fn topics_match_object_h() {
    assert_eq!(topic::ZX_INFO_HANDLE_VALID, 1);
    assert_eq!(topic::ZX_INFO_HANDLE_BASIC, 2);
    assert_eq!(topic::ZX_INFO_PROCESS, 0x1000_0003);
    assert_eq!(topic::ZX_INFO_VMAR, 7);
    assert_eq!(topic::ZX_INFO_PROCESS_MAPS, 0x2000_000d);
    assert_eq!(topic::ZX_INFO_PROCESS_MAPS_V2, 0x1000_000d);
    assert_eq!(topic::ZX_INFO_VMO, 0x3000_0017);
    assert_eq!(topic::ZX_INFO_VMO_V3, 0x2000_0017);
    assert_eq!(topic::ZX_INFO_PROCESS_VMOS, 0x3000_000e);
    assert_eq!(topic::ZX_INFO_PROCESS_VMOS_V3, 0x2000_000e);
    assert_eq!(topic::ZX_INFO_VMAR_MAPS, 36);
}

#[test]
fn handle_basic_layout() {
    let v = InfoHandleBasic {
        koid: 0x1122_3344_5566_7788,
        rights: 0xdead_beef,
        r#type: 3,
        related_koid: 9,
        reserved: 0,
        padding1: [0; 4],
    };
    let b = roundtrip(v);
    assert_eq!(size_of::<InfoHandleBasic>(), 32);
    assert_eq!(
        at::<8>(&b, offset_of!(InfoHandleBasic, koid)),
        v.koid.to_le_bytes()
    );
    assert_eq!(
        at::<4>(&b, offset_of!(InfoHandleBasic, rights)),
        v.rights.to_le_bytes()
    );
    assert_eq!(
        at::<4>(&b, offset_of!(InfoHandleBasic, r#type)),
        [3, 0, 0, 0]
    );
    assert_eq!(
        at::<8>(&b, offset_of!(InfoHandleBasic, related_koid)),
        9u64.to_le_bytes()
    );
}

#[test]
fn process_and_vmar_layout() {
    let p = InfoProcess {
        return_code: -1024,
        start_time: 77,
        flags: 3,
        padding1: [0; 4],
    };
    let b = roundtrip(p);
    assert_eq!(b.len(), 24);
    assert_eq!(
        at::<8>(&b, offset_of!(InfoProcess, start_time)),
        77i64.to_le_bytes()
    );
    assert_eq!(
        at::<4>(&b, offset_of!(InfoProcess, flags)),
        3u32.to_le_bytes()
    );
    let v = InfoVmar {
        base: 0x1000,
        len: 0x2000,
    };
    let b = roundtrip(v);
    assert_eq!(
        at::<8>(&b, offset_of!(InfoVmar, len)),
        0x2000usize.to_le_bytes()
    );
}

#[test]
fn vmo_layout() {
    let v = InfoVmo {
        koid: 1,
        name: name_field(b"vmo-name"),
        size_bytes: 2,
        parent_koid: 3,
        num_children: 4,
        num_mappings: 5,
        share_count: 6,
        flags: 7,
        padding1: [0; 4],
        committed_bytes: 8,
        handle_rights: 9,
        cache_policy: 10,
        metadata_bytes: 11,
        committed_change_events: 12,
        populated_bytes: 13,
        committed_private_bytes: 14,
        populated_private_bytes: 15,
        committed_scaled_bytes: 16,
        populated_scaled_bytes: 17,
        committed_fractional_scaled_bytes: 18,
        populated_fractional_scaled_bytes: 19,
    };
    let b = roundtrip(v);
    assert_eq!(b.len(), 176);
    assert_eq!(offset_of!(InfoVmo, committed_private_bytes), 128);
    assert_eq!(
        at::<8>(&b, offset_of!(InfoVmo, populated_fractional_scaled_bytes)),
        19u64.to_le_bytes()
    );
    // The older versions are the prefixes up to cache_policy, committed_change_events
    // and populated_bytes.
    assert_eq!(offset_of!(InfoVmo, cache_policy) + 4, InfoVmoV1::SIZE);
    assert_eq!(
        offset_of!(InfoVmo, committed_change_events) + 8,
        InfoVmoV2::SIZE
    );
    assert_eq!(offset_of!(InfoVmo, populated_bytes) + 8, InfoVmoV3::SIZE);
    let mut v3 = [0xAAu8; 136];
    Prefix::<InfoVmo, 128>(v).encode(&mut v3);
    assert_eq!(&v3[..128], &b[..128]);
    assert_eq!(&v3[128..], &[0xAA; 8]);
    let back = InfoVmoV1::decode(&b).0;
    assert_eq!((back.cache_policy, back.metadata_bytes), (10, 0));
    assert_eq!(&b[offset_of!(InfoVmo, name)..][..9], b"vmo-name\0");
    assert_eq!(
        at::<8>(&b, offset_of!(InfoVmo, size_bytes)),
        2u64.to_le_bytes()
    );
    assert_eq!(at::<4>(&b, offset_of!(InfoVmo, flags)), 7u32.to_le_bytes());
    assert_eq!(
        at::<8>(&b, offset_of!(InfoVmo, committed_bytes)),
        8u64.to_le_bytes()
    );
    assert_eq!(
        at::<4>(&b, offset_of!(InfoVmo, cache_policy)),
        10u32.to_le_bytes()
    );
    assert_eq!(
        at::<8>(&b, offset_of!(InfoVmo, populated_bytes)),
        13u64.to_le_bytes()
    );
}

#[test]
fn maps_layout_and_union() {
    let mapping = InfoMapsMapping {
        mmu_flags: 3,
        vmo_koid: 42,
        vmo_offset: 0x3000,
        committed_bytes: 0x2000,
        populated_bytes: 0x2000,
        committed_private_bytes: 0x1000,
        populated_private_bytes: 0x1000,
        committed_scaled_bytes: 0x1800,
        populated_scaled_bytes: 0x1800,
        committed_fractional_scaled_bytes: 7,
        populated_fractional_scaled_bytes: 8,
        ..InfoMapsMapping::default()
    };
    let m = InfoMaps {
        name: name_field(b"m"),
        base: 0x10000,
        size: 0x4000,
        depth: 2,
        r#type: maps_type::ZX_INFO_MAPS_TYPE_MAPPING,
        padding1: [0; 4],
        u: mapping,
    };
    let b = roundtrip(m);
    assert_eq!(b.len(), 152);
    let u = offset_of!(InfoMaps, u);
    assert_eq!(u, 64);
    assert_eq!(offset_of!(InfoMapsMapping, committed_bytes), 24);
    assert_eq!(
        at::<8>(
            &b,
            u + offset_of!(InfoMapsMapping, populated_fractional_scaled_bytes)
        ),
        8u64.to_le_bytes()
    );
    assert_eq!(m.mapping(), Some(&mapping));
    let v2 = m.to_v2();
    assert_eq!((v2.u.committed_pages, v2.u.populated_pages), (2, 2));
    assert_eq!((v2.base, v2.depth, v2.u.vmo_koid), (0x10000, 2, 42));
    let vmar = InfoMaps {
        r#type: maps_type::ZX_INFO_MAPS_TYPE_VMAR,
        ..m
    };
    let mut buf = [0xffu8; 152];
    vmar.encode(&mut buf);
    assert!(buf[64..].iter().all(|&x| x == 0));
    // Version 1 is version 2 up to the mapping's committed_pages.
    assert_eq!(
        InfoMapsV1::SIZE,
        64 + offset_of!(InfoMapsMappingV2, populated_pages)
    );
}

#[test]
fn maps_v2_layout_and_union() {
    let mapping = InfoMapsMappingV2 {
        mmu_flags: 3,
        padding1: [0; 4],
        vmo_koid: 42,
        vmo_offset: 0x3000,
        committed_pages: 2,
        populated_pages: 2,
    };
    let m = InfoMapsV2 {
        name: name_field(b"m"),
        base: 0x10000,
        size: 0x4000,
        depth: 2,
        r#type: maps_type::ZX_INFO_MAPS_TYPE_MAPPING,
        padding1: [0; 4],
        u: mapping,
    };
    let b = roundtrip(m);
    assert_eq!(b.len(), 104);
    let u = offset_of!(InfoMapsV2, u);
    assert_eq!(u, 64);
    assert_eq!(
        at::<8>(&b, u + offset_of!(InfoMapsMappingV2, vmo_koid)),
        42u64.to_le_bytes()
    );
    assert_eq!(
        at::<8>(&b, u + offset_of!(InfoMapsMappingV2, populated_pages)),
        2usize.to_le_bytes()
    );
    assert_eq!(m.mapping(), Some(&mapping));

    // A VMAR node: the union is written as zeros whatever `u` holds.
    let vmar = InfoMapsV2 {
        r#type: maps_type::ZX_INFO_MAPS_TYPE_VMAR,
        ..m
    };
    let mut buf = [0xffu8; 104];
    vmar.encode(&mut buf);
    assert!(buf[64..].iter().all(|&x| x == 0));
    assert_eq!(InfoMapsV2::decode(&buf).mapping(), None);
}

#[test]
fn scaled_bytes_divide_carry_and_round() {
    let third = ScaledBytes::share_of(4096, 3);
    assert_eq!(
        (third.integral, third.fractional),
        (1365, FRACTIONAL_BYTE / 3)
    );
    let half = ScaledBytes::share_of(4096, 2);
    assert_eq!((half.integral, half.fractional), (2048, 0));
    assert_eq!(
        ScaledBytes::share_of(1, 2) + ScaledBytes::share_of(1, 2),
        ScaledBytes {
            integral: 1,
            fractional: 0
        }
    );
    // Three thirds fall short of the page by a few 2^-63 byte; rounding gives it back.
    let all = third + third + third;
    assert_eq!(all.integral, 4095);
    assert_eq!(all.round(), 4096);
    assert_eq!(ScaledBytes::share_of(7, 0).integral, 7);
}

#[test]
fn name_field_truncates_and_terminates() {
    let long = [b'x'; 40];
    let f = name_field(&long);
    assert_eq!(f[30], b'x');
    assert_eq!(f[31], 0);
}
