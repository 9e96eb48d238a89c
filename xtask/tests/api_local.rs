//! The HTTPS API of issue 12, driven over real HTTP on the local stack:
//! moto on loopback, `cargo xtask deploy`, `cargo xtask api-key`, and
//! `cargo xtask serve` playing API Gateway in front of the real `authorizer`
//! and `api` bootstraps under the Runtime Interface Emulator (and the
//! `recognize` bootstrap behind the uploads' queue).
//!
//! It also runs the `facectl` binary beside the xtask's (the workspace's
//! test build makes it, `--features facectl/cloud`; alone: `cargo build -p
//! facectl --features cloud` first) and the function zips of `cargo xtask
//! build`.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::{Gateway, agent, b64, call, create_key, ok, read, xtask};
use local_aws::MotoServer;
use serde_json::{Value, json};

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn names(search: &Value) -> Vec<String> {
    let mut names: Vec<String> = search["faces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["match"]["person"].as_str().map(String::from))
        .collect();
    names.sort();
    names
}

#[test]
fn the_api_over_http_on_the_local_stack() {
    let data = devset::data_dir(None, &local_aws::workspace_root());
    let recognition = devset::recognition_labels(&data).expect("recognition labels");
    let detection = devset::detection_labels(&data).expect("detection labels");
    let group = devset::group_of_people(&recognition, &detection, 2)
        .expect("a labelled group photo naming two people with two photos each");
    let photo = |rel: &str| std::fs::read(data.join(rel)).expect(rel);
    let (first, second) = (&group.people[0], &group.people[1]);

    let moto = MotoServer::start().expect("moto");
    ok(&xtask(&moto, &["deploy", "--stack", "local"]));
    let key = create_key(&moto, "e2e", &[]);
    let doomed = create_key(&moto, "doomed", &[]);
    let slow = create_key(&moto, "slow", &["--rate-per-minute", "2"]);
    let listed = ok(&xtask(&moto, &["api-key", "list", "--stack", "local"]));
    assert!(
        listed.contains("e2e") && listed.contains("slow") && !listed.contains(&key),
        "{listed}"
    );

    let gateway = Gateway::start(&moto);
    let url = |path: &str| format!("{}{path}", gateway.url);
    let k = Some(key.as_str());

    // No key, a wrong key: refused before any function does face work.
    let (status, body) = call("GET", &url("/v1/collections"), None, None);
    assert_eq!((status, error_code(&body)), (403, "Unauthorized"), "{body}");
    let (status, body) = call("GET", &url("/v1/collections"), Some("fk_wrong"), None);
    assert_eq!((status, error_code(&body)), (403, "Unauthorized"), "{body}");

    // Enroll both people from all their photos but the last.
    let c = "api-e2e";
    for p in [first, second] {
        let photos = &p.photos[..p.photos.len() - 1];
        let images: Vec<Value> = photos.iter().map(|ph| b64(&photo(ph))).collect();
        let (status, body) = call(
            "POST",
            &url(&format!("/v1/collections/{c}/people/{}/faces", p.person)),
            k,
            Some(&json!({ "images": images, "attributes": { "team": "e2e" } })),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["indexed"].as_array().map(Vec::len),
            Some(photos.len()),
            "{body}"
        );
    }

    // The group photo names both, raw bytes and base64 alike.
    let group_bytes = photo(&group.group_photo);
    let (status, body) = call(
        "POST",
        &url(&format!("/v1/collections/{c}/search")),
        k,
        Some(&json!({ "image": b64(&group_bytes) })),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        names(&body),
        [first.person.clone(), second.person.clone()],
        "{body}"
    );
    let matched = body["faces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| !f["match"].is_null())
        .unwrap();
    assert_eq!(matched["match"]["attributes"]["team"], "e2e", "{matched}");
    let raw = agent()
        .post(&url("/v1/detect"))
        .header("x-api-key", &key)
        .header("content-type", "image/jpeg")
        .send(&group_bytes[..]);
    let (status, body) = read(raw);
    assert_eq!(status, 200, "{body}");
    assert!(body["faces"].as_array().unwrap().len() >= 2, "{body}");

    // Compare: the held-out photo against an enrolled one, and another person.
    let held_out = photo(first.photos.last().unwrap());
    let (status, same) = call(
        "POST",
        &url("/v1/compare"),
        k,
        Some(&json!({ "source": b64(&held_out), "target": b64(&photo(&first.photos[0])) })),
    );
    assert_eq!(status, 200, "{same}");
    assert_eq!(same["same_person"], true, "{same}");
    let (_, different) = call(
        "POST",
        &url("/v1/compare"),
        k,
        Some(&json!({ "source": b64(&held_out), "target": b64(&photo(&second.photos[0])) })),
    );
    assert_eq!(different["same_person"], false, "{different}");
    assert!(
        same["distance"].as_f64() < different["distance"].as_f64(),
        "{same} {different}"
    );

    // An upload through a presigned URL, recognized by the S3-triggered
    // path, its result read back (404 until it is written).
    let (status, upload) = call(
        "POST",
        &url("/v1/uploads"),
        k,
        Some(
            &json!({ "collection": c, "content_type": "image/jpeg", "content_length": held_out.len() }),
        ),
    );
    assert_eq!(status, 200, "{upload}");
    let result_url = url(&format!(
        "/v1/results/{}",
        upload["result_id"].as_str().unwrap()
    ));
    let (status, _) = call("GET", &result_url, k, None);
    assert_eq!(status, 404);
    let mut put = ureq::put(upload["url"].as_str().unwrap());
    for (h, v) in upload["headers"].as_object().into_iter().flatten() {
        if !h.eq_ignore_ascii_case("content-length") {
            put = put.header(h, v.as_str().unwrap());
        }
    }
    put.send(&held_out[..]).expect("PUT to the presigned URL");
    let deadline = Instant::now() + Duration::from_secs(180);
    let result = loop {
        let (status, body) = call("GET", &result_url, k, None);
        if status == 200 {
            break body;
        }
        assert_eq!(status, 404, "{body}");
        assert!(Instant::now() < deadline, "no result for the upload");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(result["status"], "ok", "{result}");
    assert!(result.to_string().contains(&first.person), "{result}");

    // facectl's remote mode: the same output as its local mode.
    let facectl = |args: &[&str]| -> Output { common::facectl(&moto, &key, args) };
    let group_path = data.join(&group.group_photo);
    let group_path = group_path.to_str().unwrap();
    let remote = facectl(&[
        "recognize",
        "--endpoint",
        &gateway.url,
        "--collection",
        c,
        group_path,
    ]);
    let remote = String::from_utf8_lossy(&remote.stdout).into_owned();
    for p in [first, second] {
        assert!(
            remote.contains(&format!("#0 {}", p.person))
                || remote.contains(&format!(" {} (similarity", p.person)),
            "{remote}"
        );
    }
    let detections = |args: &[&str]| -> Value {
        let out = facectl(args);
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).expect("facectl --json")
    };
    let local = detections(&["detect", "--json", group_path]);
    let remote = detections(&["detect", "--json", "--endpoint", &gateway.url, group_path]);
    assert_eq!(
        local[0]["faces"].as_array().map(Vec::len),
        remote[0]["faces"].as_array().map(Vec::len)
    );
    assert_eq!(
        (local[0]["width"].clone(), local[0]["height"].clone()),
        (remote[0]["width"].clone(), remote[0]["height"].clone())
    );
    for (l, r) in local[0]["faces"]
        .as_array()
        .unwrap()
        .iter()
        .zip(remote[0]["faces"].as_array().unwrap())
    {
        let dx = l["bbox"]["x"].as_f64().unwrap() - r["bbox"]["x"].as_f64().unwrap();
        assert!(dx.abs() < 1.0, "local {l} remote {r}");
    }
    let compared = facectl(&[
        "compare",
        "--endpoint",
        &gateway.url,
        data.join(first.photos.last().unwrap()).to_str().unwrap(),
        data.join(&first.photos[0]).to_str().unwrap(),
    ]);
    assert!(
        String::from_utf8_lossy(&compared.stdout).starts_with("same person"),
        "{compared:?}"
    );
    // --stack: the URL from the deploy record, which serve keeps current.
    let listed = facectl(&["people", "--stack", "local", "--collection", c, "--json"]);
    assert!(listed.status.success(), "{listed:?}");
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(2),
        "both people, from the deployed collection: {listed}"
    );

    // People: paged list, one person, attributes patched.
    let (status, page) = call(
        "GET",
        &url(&format!("/v1/collections/{c}/people?limit=1")),
        k,
        None,
    );
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["people"].as_array().map(Vec::len), Some(1), "{page}");
    let next = page["next"].as_str().expect("a next token").to_string();
    let (_, rest) = call(
        "GET",
        &url(&format!("/v1/collections/{c}/people?limit=1&next={next}")),
        k,
        None,
    );
    assert_eq!(
        rest["people"][0]["person"],
        second.person.as_str(),
        "{rest}"
    );
    let person_url = url(&format!("/v1/collections/{c}/people/{}", first.person));
    let (status, body) = call(
        "PATCH",
        &person_url,
        k,
        Some(&json!({ "attributes": { "team": null, "role": "lead" } })),
    );
    assert_eq!(status, 200, "{body}");
    let (_, person) = call("GET", &person_url, k, None);
    assert_eq!(person["attributes"], json!({ "role": "lead" }), "{person}");
    let faces = person["faces"].as_array().unwrap().clone();
    assert_eq!(faces.len(), first.photos.len() - 1, "{person}");

    // Delete one face, then forget the person.
    let face_id = faces[0]["face_id"].as_str().unwrap();
    let (status, body) = call(
        "DELETE",
        &url(&format!("/v1/collections/{c}/faces/{face_id}")),
        k,
        None,
    );
    assert_eq!(status, 200, "{body}");
    let (_, person) = call("GET", &person_url, k, None);
    assert_eq!(person["faces"].as_array().unwrap().len(), faces.len() - 1);
    let (status, _) = call("DELETE", &person_url, k, None);
    assert_eq!(status, 200);
    let (status, body) = call("GET", &person_url, k, None);
    assert_eq!((status, error_code(&body)), (404, "NotFound"), "{body}");

    // Every error row of the contract.
    let (status, body) = read(
        agent()
            .post(&url(&format!("/v1/collections/{c}/search")))
            .header("x-api-key", &key)
            .header("content-type", "application/json")
            .send("{\"image\": "),
    );
    assert_eq!((status, error_code(&body)), (400, "BadInput"), "{body}");
    let (status, body) = call(
        "POST",
        &url("/v1/compare"),
        k,
        Some(&json!({ "source": b64(&held_out) })),
    );
    assert_eq!((status, error_code(&body)), (400, "BadInput"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("target"),
        "{body}"
    );
    let (status, body) = call("GET", &url("/v1/collections/no-such/people"), k, None);
    assert_eq!((status, error_code(&body)), (404, "NotFound"), "{body}");
    let big = vec![0u8; 7 * 1024 * 1024];
    let (status, body) = read(
        agent()
            .post(&url("/v1/detect"))
            .header("x-api-key", &key)
            .header("content-type", "image/jpeg")
            .send(&big[..]),
    );
    assert_eq!((status, error_code(&body)), (413, "TooLarge"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/uploads"),
        "{body}"
    );
    let statuses: Vec<u16> = (0..4)
        .map(|_| call("GET", &url("/v1/collections"), Some(&slow), None).0)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");

    // Revocation takes effect.
    let (status, _) = call("GET", &url("/v1/collections"), Some(&doomed), None);
    assert_eq!(status, 200);
    ok(&xtask(
        &moto,
        &["api-key", "revoke", "--stack", "local", "--name", "doomed"],
    ));
    let (status, body) = call("GET", &url("/v1/collections"), Some(&doomed), None);
    assert_eq!((status, error_code(&body)), (403, "Unauthorized"), "{body}");

    // Delete the collection: everything in it goes.
    let (status, collections) = call("GET", &url("/v1/collections"), k, None);
    assert_eq!(status, 200);
    assert!(collections.to_string().contains(c), "{collections}");
    let (status, body) = call("DELETE", &url(&format!("/v1/collections/{c}")), k, None);
    assert_eq!(status, 200, "{body}");
    let (status, _) = call("GET", &url(&format!("/v1/collections/{c}/people")), k, None);
    assert_eq!(status, 404);

    drop(gateway);
    ok(&xtask(&moto, &["teardown", "--stack", "local"]));
}
