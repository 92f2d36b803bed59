use super::*;

fn storages() -> Storages {
    Storages::single("default")
}

fn routed(method: &str, path: &str, query: &str) -> Result<Route, Reply> {
    route(method, path, query, &storages())
}

#[test]
fn routes_the_smart_endpoints() {
    let r = routed("GET", "/group/p.git/info/refs", "service=git-upload-pack").unwrap();
    assert_eq!(r.endpoint, Endpoint::InfoRefs(Action::UploadPack));
    assert_eq!(
        (r.storage.as_str(), r.relative_path.as_str()),
        ("default", "group/p.git")
    );
    let r = routed("GET", "/group/p/info/refs", "x=1&service=git-receive-pack").unwrap();
    assert_eq!(r.endpoint, Endpoint::InfoRefs(Action::ReceivePack));
    assert_eq!(r.relative_path, "group/p.git");
    let r = routed("POST", "/g/p.git/git-upload-pack", "").unwrap();
    assert_eq!(r.endpoint, Endpoint::Post(Action::UploadPack));
    let r = routed("POST", "/g/p.git/git-receive-pack", "").unwrap();
    assert_eq!(r.endpoint, Endpoint::Post(Action::ReceivePack));
    assert_eq!(
        r.endpoint.content_type(),
        "application/x-git-receive-pack-result"
    );
    assert_eq!(
        Endpoint::InfoRefs(Action::UploadPack).content_type(),
        "application/x-git-upload-pack-advertisement"
    );
}

#[test]
fn refuses_everything_else() {
    let status = |m: &str, p: &str, q: &str| routed(m, p, q).unwrap_err().status;
    assert_eq!(status("GET", "/g/p.git/HEAD", ""), 404);
    assert_eq!(status("GET", "/g/p.git/objects/info/packs", ""), 404);
    assert_eq!(status("GET", "/info/refs", "service=git-upload-pack"), 404);
    assert_eq!(status("GET", "/g/p.git/info/refs", ""), 403);
    assert_eq!(
        status("GET", "/g/p.git/info/refs", "service=git-upload-archive"),
        403
    );
    assert_eq!(
        status("GET", "/../x/info/refs", "service=git-upload-pack"),
        404
    );
    assert_eq!(
        status("GET", "/a/../../x/info/refs", "service=git-upload-pack"),
        404
    );
    let r = routed("GET", "/g/p.git/git-upload-pack", "").unwrap_err();
    assert_eq!(r.status, 405);
    assert!(r.headers.contains(&("Allow", "POST".to_string())));
    assert_eq!(
        routed("POST", "/g/p.git/info/refs", "service=git-upload-pack")
            .unwrap_err()
            .status,
        405
    );
}

#[test]
fn post_checks_type_and_encoding() {
    let up = Action::UploadPack;
    let ct = Some("application/x-git-upload-pack-request");
    assert_eq!(check_post(up, ct, None), Ok(Encoding::Identity));
    assert_eq!(check_post(up, ct, Some("gzip")), Ok(Encoding::Gzip));
    assert_eq!(check_post(up, ct, Some("x-gzip")), Ok(Encoding::Gzip));
    assert_eq!(check_post(up, ct, Some("br")).unwrap_err().status, 415);
    let r = check_post(up, Some("text/plain"), None).unwrap_err();
    assert_eq!(r.status, 415);
    assert_eq!(
        r.body,
        "Expected POST with Content-Type 'application/x-git-upload-pack-request', but received 'text/plain' instead.\n"
    );
}

#[test]
fn statuses_of_failed_rpcs() {
    assert_eq!(Reply::from_status(&Status::not_found("x")).status, 404);
    assert_eq!(
        Reply::from_status(&Status::invalid_argument("x")).status,
        404
    );
    assert_eq!(
        Reply::from_status(&Status::permission_denied("x")).status,
        403
    );
    assert_eq!(Reply::from_status(&Status::unavailable("x")).status, 503);
    assert_eq!(Reply::from_status(&Status::internal("x")).status, 500);
    let busy = gitrpc_proto::limit::status(
        "rate limit reached".into(),
        "rate limit reached",
        std::time::Duration::from_millis(2500),
    );
    let r = Reply::from_status(&busy);
    assert_eq!(r.status, 429);
    assert!(r.headers.contains(&("Retry-After", "3".to_string())));
    let r = Reply::unauthorized("my \"realm\"", "");
    assert_eq!(r.status, 401);
    assert!(r
        .headers
        .contains(&("WWW-Authenticate", "Basic realm=\"my realm\"".to_string())));
    assert!(r.headers.contains(&("Pragma", "no-cache".to_string())));
    assert_eq!(
        Reply::forbidden(Action::ReceivePack, "").body,
        "You are not allowed to push code to this project.\n"
    );
    assert_eq!(Reply::forbidden(Action::UploadPack, "nope").body, "nope\n");
}

#[test]
fn protocol_header() {
    assert_eq!(git_protocol(Some("version=2")), "version=2");
    assert_eq!(git_protocol(Some("version=3:version=2")), "version=2");
    assert_eq!(git_protocol(Some("bogus")), "");
    assert_eq!(git_protocol(None), "");
}
