//! Unit tests of the opening rules: links refused or followed, FIFOs and
//! folders refused at once, `same_file` after a swap.

use super::*;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::sync::mpsc;
use std::time::Duration;

fn write_opts() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true).create(true).truncate(true);
    o
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL in path");
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(
        rc,
        0,
        "mkfifo {}: {}",
        path.display(),
        io::Error::last_os_error()
    );
}

/// Runs `f` on another thread and fails the test if it has not returned
/// within five seconds (an open that blocks would never return).
fn within_seconds<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("the open returned at once instead of blocking")
}

#[test]
fn a_link_is_refused_for_writing_and_its_target_is_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let decoy = dir.path().join("decoy");
    fs::write(&decoy, b"precious").expect("write decoy");
    let link = dir.path().join("out.txt");
    symlink(&decoy, &link).expect("symlink");
    let err = open(&write_opts(), &link, Links::Refuse).expect_err("a link must be refused");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let text = err.to_string();
    assert!(text.contains(&link.display().to_string()), "{text}");
    assert!(text.contains("is a symbolic link"), "{text}");
    assert_eq!(fs::read(&decoy).expect("read decoy"), b"precious");
    // create_new on a link fails too, with the same words.
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    let err = open(&o, &link, Links::Refuse).expect_err("create_new on a link");
    assert!(err.to_string().contains("is a symbolic link"), "{err}");
}

#[test]
fn a_dangling_link_is_refused_and_nothing_is_created_behind_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let behind = dir.path().join("not-yet");
    let link = dir.path().join("out.txt");
    symlink(&behind, &link).expect("symlink");
    let err = open(&write_opts(), &link, Links::Refuse).expect_err("refused");
    assert!(err.to_string().contains("is a symbolic link"), "{err}");
    assert!(!behind.exists());
}

#[test]
fn a_link_is_followed_for_an_input_and_refused_for_a_file_checkflow_owns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let real = dir.path().join("real.yaml");
    fs::write(&real, "text").expect("write");
    let link = dir.path().join("link.yaml");
    symlink(&real, &link).expect("symlink");
    assert_eq!(
        read_to_string(&link, Links::Follow).expect("follow"),
        "text"
    );
    let err = read(&link, Links::Refuse).expect_err("refuse");
    assert!(err.to_string().contains("is a symbolic link"), "{err}");
}

#[test]
fn a_fifo_is_refused_at_once_for_reading_and_for_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("pipe");
    mkfifo(&fifo);
    for links in [Links::Follow, Links::Refuse] {
        let p = fifo.clone();
        let err = within_seconds(move || read(&p, links)).expect_err("a FIFO must be refused");
        assert_eq!(
            err.to_string(),
            format!("{} is a FIFO, not a regular file", fifo.display())
        );
        let p = fifo.clone();
        let err = within_seconds(move || open(&write_opts(), &p, links))
            .expect_err("a FIFO must be refused for writing");
        assert_eq!(
            err.to_string(),
            format!("{} is a FIFO, not a regular file", fifo.display())
        );
    }
    // Through a link that may be followed, the FIFO behind it is still refused.
    let link = dir.path().join("link");
    symlink(&fifo, &link).expect("symlink");
    let p = link.clone();
    let err = within_seconds(move || read(&p, Links::Follow)).expect_err("refused");
    assert!(
        err.to_string().ends_with("is a FIFO, not a regular file"),
        "{err}"
    );
}

#[test]
fn a_folder_and_a_device_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = read(dir.path(), Links::Follow).expect_err("a folder");
    assert!(
        err.to_string()
            .ends_with("is a directory, not a regular file"),
        "{err}"
    );
    let err = open(&write_opts(), dir.path(), Links::Refuse).expect_err("a folder for writing");
    assert!(
        err.to_string()
            .ends_with("is a directory, not a regular file"),
        "{err}"
    );
    let err = open(&write_opts(), Path::new("/dev/null"), Links::Refuse).expect_err("a device");
    assert_eq!(err.to_string(), "/dev/null is a device, not a regular file");
}

#[test]
fn a_regular_file_opens_blocking_and_missing_files_keep_their_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("f");
    let mut f = open(&write_opts(), &p, Links::Refuse).expect("create");
    f.write_all(b"abc").expect("write");
    drop(f);
    assert_eq!(read(&p, Links::Refuse).expect("read"), b"abc");
    let f = open_read(&p, Links::Refuse).expect("open");
    {
        use std::os::fd::AsRawFd;
        // SAFETY: F_GETFL only reads the flags of an open descriptor.
        let flags = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(
            flags & libc::O_NONBLOCK,
            0,
            "O_NONBLOCK is cleared after the open"
        );
    }
    let err = read(&dir.path().join("missing"), Links::Refuse).expect_err("missing");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

#[test]
fn same_file_is_false_once_the_name_is_a_link_or_another_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("f");
    let f = open(&write_opts(), &p, Links::Refuse).expect("create");
    assert!(same_file(&f, &p));
    // A link to the very same file is not the file.
    let moved = dir.path().join("moved");
    fs::rename(&p, &moved).expect("rename");
    symlink(&moved, &p).expect("symlink");
    assert!(!same_file(&f, &p));
    fs::remove_file(&p).expect("remove link");
    fs::write(&p, b"other").expect("another file");
    assert!(!same_file(&f, &p));
    fs::remove_file(&p).expect("remove");
    assert!(!same_file(&f, &p));
}

#[test]
fn wildcards_match_as_ssis_does_regardless_of_case() {
    assert!(wildcard("*.csv", "a.CSV"));
    assert!(wildcard("data_??.txt", "data_01.txt"));
    assert!(!wildcard("data_??.txt", "data_1.txt"));
    assert!(!wildcard("*.csv", "a.csv.bak"));
    assert!(wildcard("*", "anything"));
    assert!(wildcard("*", ""));
    assert!(wildcard("a*b*c", "aXXbYYc"));
}

#[test]
fn list_gives_matching_files_in_name_order_and_walks_down_only_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for name in ["b.csv", "a.CSV", "c.txt"] {
        fs::write(d.join(name), b"x").expect("write");
    }
    fs::create_dir(d.join("sub")).expect("sub");
    fs::write(d.join("sub").join("d.csv"), b"x").expect("write");
    fs::create_dir(d.join("dir.csv")).expect("a folder named like a file");
    symlink(d.join("b.csv"), d.join("link.csv")).expect("link");
    mkfifo(&d.join("pipe.csv"));
    // A link to the folder above: walking it would never end.
    symlink(d, d.join("sub").join("loop")).expect("loop");

    let flat = list(d, "*.csv", false).expect("list");
    let names: Vec<_> = flat
        .iter()
        .map(|p| p.strip_prefix(d).unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            Path::new("a.CSV"),
            Path::new("b.csv"),
            Path::new("link.csv")
        ],
        "folders and FIFOs are not files; a link is"
    );
    let deep = list(d, "*.csv", true).expect("list");
    assert_eq!(deep.len(), 4);
    assert!(deep.contains(&d.join("sub").join("d.csv")));

    let err = list(&d.join("missing"), "*", false).expect_err("missing folder");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains("cannot list folder"), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
}
