use std::path::{Path, PathBuf};

use super::{listen_streams, socket_holds_in};

fn unit_dirs(root: &Path) -> Vec<PathBuf> {
    vec![root.join("usr"), root.join("etc"), root.join("user")]
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap_or(path)).ok();
    std::fs::write(path, text).ok();
}

const PACKAGED: &str = include_str!("../../../packaging/tokentray.socket");

#[test]
fn the_packaged_socket_holds_its_port_once_enabled() {
    let root = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
    let dirs = unit_dirs(root.path());
    write(&dirs[0].join("tokentray.socket"), PACKAGED);
    let missing = socket_holds_in(&dirs, 42117).err().unwrap_or_default();
    assert!(missing.contains("not enabled"), "{missing}");
    write(
        &dirs[1]
            .join("sockets.target.wants")
            .join("tokentray.socket"),
        PACKAGED,
    );
    assert_eq!(socket_holds_in(&dirs, 42117), Ok(()));
    let other = socket_holds_in(&dirs, 5000).err().unwrap_or_default();
    assert!(
        other.contains("127.0.0.1:42117") && other.contains("port is 5000"),
        "{other}"
    );
}

#[test]
fn a_drop_in_moves_the_port_as_systemctl_edit_writes_it() {
    let root = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
    let dirs = unit_dirs(root.path());
    write(&dirs[0].join("tokentray.socket"), PACKAGED);
    write(
        &dirs[2]
            .join("sockets.target.wants")
            .join("tokentray.socket"),
        PACKAGED,
    );
    write(
        &dirs[2].join("tokentray.socket.d").join("override.conf"),
        "[Socket]\nListenStream=\nListenStream=127.0.0.1:5000\nListenStream=[::1]:5000\n",
    );
    assert_eq!(socket_holds_in(&dirs, 5000), Ok(()));
    assert!(socket_holds_in(&dirs, 42117).is_err());
}

#[test]
fn an_empty_listen_stream_clears_the_earlier_ones() {
    let texts = [
        "ListenStream=127.0.0.1:1\nListenStream=[::1]:1\n".to_string(),
        "ListenStream=\n  ListenStream = 0.0.0.0:2\nListenStream=[::1]:3".to_string(),
    ];
    assert_eq!(listen_streams(&texts), vec!["0.0.0.0:2", "[::1]:3"]);
}
