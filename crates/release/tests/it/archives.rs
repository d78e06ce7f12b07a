//! Build outputs handed over as archives are unpacked with the package path
//! rules: hostile entries are refused with the entry named, and nothing is
//! written outside the unpack directory.

use std::io::Write;
use std::path::Path;

use deltapack_release::Error;

use crate::fixture::*;

/// A tar entry with a raw name (bypassing the tar crate's own checks).
fn entry(
    b: &mut tar::Builder<impl Write>,
    name: &str,
    kind: tar::EntryType,
    link: &str,
    data: &[u8],
) {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o755);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

/// A raw tar entry: name, type, link target, data.
type Raw<'a> = (&'a str, tar::EntryType, &'a str, &'a [u8]);

fn tar_gz_of(path: &Path, entries: &[Raw<'_>]) {
    let f = fs_err::File::create(path).unwrap();
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        f,
        flate2::Compression::fast(),
    ));
    for (name, kind, link, data) in entries {
        entry(&mut b, name, *kind, link, data);
    }
    b.into_inner().unwrap().finish().unwrap();
}

/// Releases `archive` as platform `linux`; an error reading it must name
/// the platform and the archive, and is returned without that layer.
fn release_archive(dir: &Path, archive: &Path) -> Result<deltapack_release::Summary, Error> {
    packager(&dir.join("repo"))
        .release(
            &new_release(0, "stable", vec![("linux".into(), archive.to_owned())]),
            None,
            &|_| {},
        )
        .map_err(|e| match e {
            Error::Input {
                platform,
                path,
                source,
            } => {
                assert_eq!((platform.as_str(), path.as_path()), ("linux", archive));
                *source
            }
            other => panic!("not named by platform: {other}"),
        })
}

#[test]
fn hostile_tar_entries_are_refused() {
    use tar::EntryType::{Block, Char, Directory, Link, Regular, Symlink};
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<Raw<'_>>, &str)> = vec![
        (
            "dotdot",
            vec![("../evil", Regular, "", b"x")],
            "unsafe entry name",
        ),
        (
            "nested",
            vec![("a/../../evil", Regular, "", b"x")],
            "unsafe entry name",
        ),
        (
            "absolute",
            vec![("/tmp/evil", Regular, "", b"x")],
            "unsafe entry name",
        ),
        (
            "backslash",
            vec![("a\\..\\evil", Regular, "", b"x")],
            "unsafe entry name",
        ),
        (
            "escape-link",
            vec![("l", Symlink, "../../etc", b"")],
            "leaves the tree",
        ),
        (
            "through-link",
            vec![
                ("d", Directory, "", b""),
                ("l", Symlink, "d", b""),
                ("l/x", Regular, "", b"x"),
            ],
            "through symlink",
        ),
        (
            "twice",
            vec![("a", Regular, "", b"1"), ("a", Regular, "", b"2")],
            "appears twice",
        ),
        (
            "hardlink-out",
            vec![("h", Link, "/etc/passwd", b"")],
            "hard link",
        ),
        (
            "device",
            vec![("dev", Char, "", b"")],
            "unsupported entry type",
        ),
        (
            "block",
            vec![("blk", Block, "", b"")],
            "unsupported entry type",
        ),
    ];
    for (name, entries, why) in cases {
        let archive = dir.path().join(format!("{name}.tar.gz"));
        tar_gz_of(&archive, &entries);
        let e = release_archive(dir.path(), &archive).unwrap_err();
        assert!(
            matches!(&e, Error::Archive { reason, .. } if reason.contains(why)),
            "{name}: {e}"
        );
    }
    assert!(!dir.path().join("evil").exists());
    assert!(!dir.path().join("repo/manifest.json").exists());
}

#[test]
fn archives_give_the_same_tree_as_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree, 3, "linux");
    #[cfg(unix)]
    fs_err::os::unix::fs::symlink("bin/sample-app", tree.join("app")).unwrap();
    let want = digest(&tree);
    let tgz = dir.path().join("a.tar.gz");
    tar_gz(&tree, &tgz);
    let tzst = dir.path().join("a.tar.zst");
    {
        let f = fs_err::File::create(&tzst).unwrap();
        let mut b = tar::Builder::new(
            zstd::stream::write::Encoder::new(f, 3)
                .unwrap()
                .auto_finish(),
        );
        b.follow_symlinks(false);
        b.append_dir_all(".", &tree).unwrap();
        b.finish().unwrap();
    }
    let z = dir.path().join("a.zip");
    #[cfg(unix)]
    fs_err::remove_file(tree.join("app")).unwrap();
    zip(&tree, &z);
    let no_link = digest(&tree);
    for (i, (archive, want)) in [(&tgz, &want), (&tzst, &want), (&z, &no_link)]
        .into_iter()
        .enumerate()
    {
        let repo = dir.path().join(format!("repo{i}"));
        packager(&repo)
            .release(
                &new_release(0, "stable", vec![("p".into(), archive.clone())]),
                None,
                &|_| {},
            )
            .unwrap();
        let m = manifest(&repo);
        assert_eq!(
            &m.releases[0].platforms["p"].tree.digest,
            want,
            "{}",
            archive.display()
        );
    }
}

#[test]
fn zip_traversal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (i, name) in ["../evil", "/abs/evil", "a/../../evil", "C:/evil"]
        .into_iter()
        .enumerate()
    {
        let z = dir.path().join(format!("{i}.zip"));
        let mut w = zip::ZipWriter::new(fs_err::File::create(&z).unwrap());
        w.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"x").unwrap();
        w.finish().unwrap();
        let e = release_archive(dir.path(), &z).unwrap_err();
        assert!(matches!(e, Error::Archive { .. }), "{name}: {e}");
    }
    assert!(!dir.path().join("evil").exists());
}
