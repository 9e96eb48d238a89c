//! The synthesized templates: pinned by snapshots, and checked against the
//! rules the stack promises (least privilege, tags, queue timing).

use std::collections::{BTreeMap, BTreeSet};

use face_stacks::{Architecture, Assets, Deployment, FunctionName, Stack, StackError};
use serde_json::{Value, json};

/// Fixed artifact keys, as deploy would compute from the zips' hashes.
fn assets() -> Assets {
    let mut keys = BTreeMap::new();
    for f in FunctionName::ALL {
        for arch in [Architecture::X86_64, Architecture::Arm64] {
            let hash = format!("{:0>64}", format!("{f}{}", arch.as_str()).len());
            keys.insert((f, arch), Assets::key_for(f, arch, &hash));
        }
    }
    Assets { keys }
}

fn stacks(name: &str) -> Vec<Stack> {
    let deployment = Deployment::embedded(name)
        .expect("embedded deployment")
        .unwrap_or_else(|e| panic!("stacks/{name}.yaml: {e}"));
    deployment.synth(&assets()).expect("synth")
}

fn all_stacks() -> Vec<Stack> {
    ["local", "dev", "prod"]
        .into_iter()
        .flat_map(stacks)
        .collect()
}

fn resources(stack: &Stack) -> &serde_json::Map<String, Value> {
    &stack.template.resources
}

#[test]
fn local_template_snapshot() {
    for s in stacks("local") {
        insta::assert_json_snapshot!(format!("local-{}", s.region), s.template.to_json());
    }
}

#[test]
fn dev_template_snapshot() {
    for s in stacks("dev") {
        insta::assert_json_snapshot!(format!("dev-{}", s.region), s.template.to_json());
    }
}

#[test]
fn prod_template_snapshot() {
    let stacks = stacks("prod");
    assert_eq!(
        stacks.iter().map(|s| s.region.as_str()).collect::<Vec<_>>(),
        ["eu-west-1", "us-east-1"]
    );
    for s in stacks {
        insta::assert_json_snapshot!(format!("prod-{}", s.region), s.template.to_json());
    }
}

/// Every `Resource` of every IAM statement, wherever policies appear.
fn policy_resources(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(m) => {
            if let (Some(_), Some(r)) = (m.get("Effect"), m.get("Resource")) {
                match r {
                    Value::Array(items) => out.extend(items.iter().cloned()),
                    other => out.push(other.clone()),
                }
            }
            m.values().for_each(|x| policy_resources(x, out));
        }
        Value::Array(items) => items.iter().for_each(|x| policy_resources(x, out)),
        _ => {}
    }
}

#[test]
fn no_policy_grants_on_every_resource() {
    for s in all_stacks() {
        let mut found = Vec::new();
        policy_resources(&s.template.to_json(), &mut found);
        assert!(found.len() > 10, "too few statements found: {found:?}");
        assert!(
            !found.iter().any(|r| r == "*"),
            "{} {}: a statement on Resource \"*\"",
            s.stack_name,
            s.region
        );
    }
}

/// Types that take no tags in CloudFormation.
const UNTAGGABLE: [&str; 9] = [
    "AWS::SQS::QueuePolicy",
    "AWS::S3::BucketPolicy",
    "AWS::ApiGateway::Resource",
    "AWS::ApiGateway::Method",
    "AWS::ApiGateway::Authorizer",
    "AWS::ApiGateway::Deployment",
    "AWS::ApiGateway::GatewayResponse",
    "AWS::Lambda::Permission",
    "AWS::CloudWatch::Dashboard",
];

#[test]
fn every_taggable_resource_is_tagged() {
    for s in all_stacks() {
        for (id, r) in resources(&s) {
            let ty = r["Type"].as_str().unwrap();
            if UNTAGGABLE.contains(&ty) {
                assert!(r["Properties"].get("Tags").is_none(), "{id}");
                continue;
            }
            let tags: BTreeMap<&str, &str> = r["Properties"]["Tags"]
                .as_array()
                .unwrap_or_else(|| panic!("{id} ({ty}) has no Tags"))
                .iter()
                .map(|t| (t["Key"].as_str().unwrap(), t["Value"].as_str().unwrap()))
                .collect();
            assert_eq!(tags.get("face:stack"), Some(&s.stack_name.as_str()), "{id}");
            assert_eq!(tags.get("face:region"), Some(&s.region.as_str()), "{id}");
        }
    }
}

/// The actions of one role's inline policy, by resource expression.
fn role_actions(stack: &Stack, role: &str) -> BTreeSet<(String, String)> {
    let doc = &resources(stack)[role]["Properties"]["Policies"][0]["PolicyDocument"];
    let mut out = BTreeSet::new();
    for st in doc["Statement"].as_array().unwrap() {
        assert_eq!(st["Effect"], "Allow");
        for a in st["Action"].as_array().unwrap() {
            for r in st["Resource"].as_array().unwrap() {
                out.insert((a.as_str().unwrap().to_string(), describe(r)));
            }
        }
    }
    out
}

/// A compact rendering of a resource expression: `DataBucket.Arn/collections/*`.
fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(m) if m.contains_key("Ref") => m["Ref"].as_str().unwrap().to_string(),
        Value::Object(m) if m.contains_key("Fn::GetAtt") => {
            let a = &m["Fn::GetAtt"];
            format!("{}.{}", a[0].as_str().unwrap(), a[1].as_str().unwrap())
        }
        Value::Object(m) if m.contains_key("Fn::Join") => m["Fn::Join"][1]
            .as_array()
            .unwrap()
            .iter()
            .map(describe)
            .collect(),
        other => panic!("unexpected expression {other}"),
    }
}

fn set(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(a, r)| (a.to_string(), r.to_string()))
        .collect()
}

#[test]
fn roles_hold_exactly_the_permissions_lambdas_readme_lists() {
    let s = &stacks("dev")[0];
    let logs = |f: &str| {
        format!(
            "arn:AWS::Partition:logs:AWS::Region:AWS::AccountId:log-group:/aws/lambda/face-dev-{f}:*"
        )
    };
    let enroll_logs = logs("enroll");
    let recognize_logs = logs("recognize");
    assert_eq!(
        role_actions(s, "EnrollRole"),
        set(&[
            ("s3:GetObject", "DataBucket.Arn/*"),
            ("s3:PutObject", "DataBucket.Arn/collections/*"),
            ("s3:DeleteObject", "DataBucket.Arn/collections/*"),
            ("s3:ListBucket", "DataBucket.Arn"),
            ("dynamodb:GetItem", "PeopleTable.Arn"),
            ("dynamodb:PutItem", "PeopleTable.Arn"),
            ("dynamodb:DeleteItem", "PeopleTable.Arn"),
            ("dynamodb:Query", "PeopleTable.Arn"),
            ("logs:CreateLogStream", &enroll_logs),
            ("logs:PutLogEvents", &enroll_logs),
        ])
    );
    assert_eq!(
        role_actions(s, "RecognizeRole"),
        set(&[
            ("s3:GetObject", "DataBucket.Arn/*"),
            ("s3:ListBucket", "DataBucket.Arn"),
            ("dynamodb:GetItem", "PeopleTable.Arn"),
            ("dynamodb:BatchGetItem", "PeopleTable.Arn"),
            ("dynamodb:PutItem", "ResultsTable.Arn"),
            ("dynamodb:GetItem", "ResultsTable.Arn"),
            ("dynamodb:UpdateItem", "ResultsTable.Arn"),
            ("sqs:SendMessage", "ResultsQueue.Arn"),
            ("sqs:ReceiveMessage", "WorkQueue.Arn"),
            ("sqs:DeleteMessage", "WorkQueue.Arn"),
            ("sqs:GetQueueAttributes", "WorkQueue.Arn"),
            ("sqs:ChangeMessageVisibility", "WorkQueue.Arn"),
            ("dynamodb:GetItem", "ScanJobsTable.Arn"),
            ("dynamodb:PutItem", "ScanJobsTable.Arn"),
            ("sqs:SendMessage", "ScanQueue.Arn"),
            ("logs:CreateLogStream", &recognize_logs),
            ("logs:PutLogEvents", &recognize_logs),
        ])
    );
    let scan_logs = logs("scan-worker");
    assert_eq!(
        role_actions(s, "ScanWorkerRole"),
        set(&[
            ("s3:GetObject", "DataBucket.Arn/*"),
            ("s3:PutObject", "DataBucket.Arn/scans/*"),
            ("s3:ListBucket", "DataBucket.Arn"),
            ("dynamodb:GetItem", "PeopleTable.Arn"),
            ("dynamodb:GetItem", "ScanJobsTable.Arn"),
            ("dynamodb:UpdateItem", "ScanJobsTable.Arn"),
            ("dynamodb:PutItem", "ResultsTable.Arn"),
            ("dynamodb:GetItem", "ResultsTable.Arn"),
            ("dynamodb:UpdateItem", "ResultsTable.Arn"),
            ("sqs:SendMessage", "ResultsQueue.Arn"),
            ("sqs:SendMessage", "ScanQueue.Arn"),
            ("sqs:ReceiveMessage", "ScanQueue.Arn"),
            ("sqs:DeleteMessage", "ScanQueue.Arn"),
            ("sqs:GetQueueAttributes", "ScanQueue.Arn"),
            ("sqs:ChangeMessageVisibility", "ScanQueue.Arn"),
            ("sns:Publish", "ResultsTopic"),
            ("logs:CreateLogStream", &scan_logs),
            ("logs:PutLogEvents", &scan_logs),
        ])
    );
    let api_logs = logs("api");
    assert_eq!(
        role_actions(s, "ApiRole"),
        set(&[
            ("s3:GetObject", "DataBucket.Arn/*"),
            ("s3:PutObject", "DataBucket.Arn/uploads/*"),
            ("s3:PutObject", "DataBucket.Arn/collections/*"),
            ("s3:DeleteObject", "DataBucket.Arn/uploads/*"),
            ("s3:DeleteObject", "DataBucket.Arn/collections/*"),
            ("s3:ListBucket", "DataBucket.Arn"),
            ("dynamodb:GetItem", "PeopleTable.Arn"),
            ("dynamodb:PutItem", "PeopleTable.Arn"),
            ("dynamodb:DeleteItem", "PeopleTable.Arn"),
            ("dynamodb:Query", "PeopleTable.Arn"),
            ("dynamodb:UpdateItem", "PeopleTable.Arn"),
            ("dynamodb:GetItem", "ResultsTable.Arn"),
            ("dynamodb:UpdateItem", "ApiKeysTable.Arn"),
            ("dynamodb:GetItem", "ScanJobsTable.Arn"),
            ("dynamodb:PutItem", "ScanJobsTable.Arn"),
            ("sqs:SendMessage", "ScanQueue.Arn"),
            ("logs:CreateLogStream", &api_logs),
            ("logs:PutLogEvents", &api_logs),
        ])
    );
    let authorizer_logs = logs("authorizer");
    assert_eq!(
        role_actions(s, "AuthorizerRole"),
        set(&[
            ("dynamodb:GetItem", "ApiKeysTable.Arn"),
            ("logs:CreateLogStream", &authorizer_logs),
            ("logs:PutLogEvents", &authorizer_logs),
        ])
    );
}

/// The logical ids of the roles whose policy names `resource` (a logical
/// id) in any statement.
fn roles_reaching(stack: &Stack, resource: &str) -> BTreeSet<String> {
    resources(stack)
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::IAM::Role")
        .filter(|(_, r)| {
            let mut found = Vec::new();
            policy_resources(&r["Properties"]["Policies"], &mut found);
            found.iter().any(|v| describe(v).starts_with(resource))
        })
        .map(|(id, _)| id.clone())
        .collect()
}

#[test]
fn the_keys_table_is_reachable_by_api_and_authorizer_only_and_the_authorizer_has_no_s3() {
    for s in all_stacks() {
        assert_eq!(
            roles_reaching(&s, "ApiKeysTable"),
            BTreeSet::from(["ApiRole".to_string(), "AuthorizerRole".to_string()]),
            "{} {}",
            s.stack_name,
            s.region
        );
        let doc = &resources(&s)["AuthorizerRole"]["Properties"]["Policies"][0];
        for st in doc["PolicyDocument"]["Statement"].as_array().unwrap() {
            for a in st["Action"].as_array().unwrap() {
                let a = a.as_str().unwrap();
                assert!(
                    a == "dynamodb:GetItem" || a.starts_with("logs:"),
                    "authorizer may {a}"
                );
            }
        }
        let table = &resources(&s)["ApiKeysTable"]["Properties"];
        assert_eq!(table["TableName"], format!("{}-api-keys", s.stack_name));
        assert_eq!(table["KeySchema"][0]["AttributeName"], "id");
        assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
        assert_eq!(
            table["TimeToLiveSpecification"],
            serde_json::json!({"AttributeName": "expires_at", "Enabled": true})
        );
    }
}

/// Resources of one type: (logical id, resource).
fn of_type<'a>(stack: &'a Stack, ty: &str) -> Vec<(&'a String, &'a Value)> {
    resources(stack)
        .iter()
        .filter(|(_, r)| r["Type"] == ty)
        .collect()
}

#[test]
fn every_api_method_is_behind_the_key_authorizer() {
    for s in all_stacks() {
        let methods = of_type(&s, "AWS::ApiGateway::Method");
        assert!(!methods.is_empty());
        let authorizers = of_type(&s, "AWS::ApiGateway::Authorizer");
        assert_eq!(authorizers.len(), 1);
        let (authorizer_id, authorizer) = authorizers[0];
        let a = &authorizer["Properties"];
        assert_eq!(a["Type"], "TOKEN");
        assert_eq!(a["IdentitySource"], "method.request.header.x-api-key");
        assert_eq!(a["AuthorizerResultTtlInSeconds"], 60);
        assert!(describe(&a["AuthorizerUri"]).contains("AuthorizerFunction.Arn"));
        for (id, m) in &methods {
            let p = &m["Properties"];
            assert_eq!(p["AuthorizationType"], "CUSTOM", "{id}");
            assert_eq!(describe(&p["AuthorizerId"]), *authorizer_id, "{id}");
            assert_eq!(p["Integration"]["Type"], "AWS_PROXY", "{id}");
            assert_eq!(p["Integration"]["IntegrationHttpMethod"], "POST", "{id}");
            assert!(describe(&p["Integration"]["Uri"]).contains("ApiFunction.Arn"));
        }
        // The deployment waits for every method, and the stage serves it.
        let deployments = of_type(&s, "AWS::ApiGateway::Deployment");
        assert_eq!(deployments.len(), 1);
        let (deployment_id, deployment) = deployments[0];
        let depends = dependencies(deployment);
        for (id, _) in &methods {
            assert!(depends.contains(id.as_str()), "{id}");
        }
        // Gateway responses only apply once deployed: the deployment
        // snapshots them too.
        for (id, _) in of_type(&s, "AWS::ApiGateway::GatewayResponse") {
            assert!(depends.contains(id.as_str()), "{id}");
        }
        let stage = &resources(&s)["RestApiStage"]["Properties"];
        assert_eq!(stage["StageName"], "live");
        assert_eq!(describe(&stage["DeploymentId"]), *deployment_id);
        // Lambda permissions: API Gateway, from this API only.
        let permissions = of_type(&s, "AWS::Lambda::Permission");
        assert_eq!(permissions.len(), 2);
        for (id, p) in permissions {
            let p = &p["Properties"];
            assert_eq!(p["Principal"], "apigateway.amazonaws.com", "{id}");
            let source = describe(&p["SourceArn"]);
            assert!(
                source.starts_with(
                    "arn:AWS::Partition:execute-api:AWS::Region:AWS::AccountId:RestApi/"
                ),
                "{id}: {source}"
            );
        }
    }
}

#[test]
fn every_gateway_response_is_the_api_error_shape() {
    let expected = BTreeMap::from([
        ("UNAUTHORIZED", ("403", "Unauthorized")),
        ("ACCESS_DENIED", ("403", "Unauthorized")),
        ("THROTTLED", ("429", "Throttled")),
        ("QUOTA_EXCEEDED", ("429", "Throttled")),
        ("REQUEST_TOO_LARGE", ("413", "TooLarge")),
        ("MISSING_AUTHENTICATION_TOKEN", ("404", "NotFound")),
        ("RESOURCE_NOT_FOUND", ("404", "NotFound")),
        ("AUTHORIZER_FAILURE", ("500", "Internal")),
        // The defaults keep each type's own status (a 415 stays a 415).
        ("DEFAULT_4XX", ("(own)", "BadInput")),
        ("DEFAULT_5XX", ("(own)", "Internal")),
    ]);
    for s in all_stacks() {
        let mut seen = BTreeMap::new();
        for (id, r) in of_type(&s, "AWS::ApiGateway::GatewayResponse") {
            let p = &r["Properties"];
            let template = p["ResponseTemplates"]["application/json"]
                .as_str()
                .unwrap()
                .replace("$context.error.messageString", "\"a message\"");
            let body: Value =
                serde_json::from_str(&template).unwrap_or_else(|e| panic!("{id}: {template}: {e}"));
            let error = body["error"].as_object().unwrap();
            assert_eq!(body.as_object().unwrap().len(), 1, "{id}");
            assert_eq!(error.len(), 2, "{id}");
            assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
            seen.insert(
                p["ResponseType"].as_str().unwrap(),
                (
                    p["StatusCode"].as_str().unwrap_or("(own)"),
                    error["code"].as_str().unwrap().to_string(),
                ),
            );
        }
        let seen: BTreeMap<_, _> = seen
            .iter()
            .map(|(k, (status, code))| (*k, (*status, code.as_str())))
            .collect();
        assert_eq!(seen, expected);
    }
}

#[test]
fn the_api_url_and_throttling_come_from_the_stack_and_the_yaml() {
    let s = &stacks("dev")[0];
    let out = &s.template.outputs;
    assert_eq!(
        describe(&out["ApiUrl"]["Value"]),
        "https://RestApi.execute-api.AWS::Region.AWS::URLSuffix/live"
    );
    assert_eq!(describe(&out["RestApiId"]["Value"]), "RestApi");
    assert_eq!(describe(&out["ApiKeysTableName"]["Value"]), "ApiKeysTable");
    let settings = &resources(s)["RestApiStage"]["Properties"]["MethodSettings"][0];
    assert_eq!(settings["ThrottlingRateLimit"], 50);
    assert_eq!(settings["ThrottlingBurstLimit"], 100);

    let d = parse(
        "name: t\ndefaults: {api: {rate_per_s: 20, burst: 40}}\nregions: {eu-west-1: {api: {burst: 30}}}",
    )
    .unwrap();
    let api = d.regions[0].api;
    assert_eq!((api.rate_per_s, api.burst), (20, 30));
    let rest = &d.synth(&assets()).unwrap()[0];
    let settings = &resources(rest)["RestApiStage"]["Properties"]["MethodSettings"][0];
    assert_eq!(settings["ThrottlingRateLimit"], 20);
    assert_eq!(settings["ThrottlingBurstLimit"], 30);
}

#[test]
fn api_functions_keep_their_own_sizes_unless_set_per_function() {
    // prod sets 3008 MiB / 120 s for every function: the face models'.
    let d = Deployment::embedded("prod").unwrap().unwrap();
    for r in &d.regions {
        let authorizer = r.functions[&FunctionName::Authorizer];
        assert_eq!((authorizer.memory_mib, authorizer.timeout_s), (256, 10));
        let api = r.functions[&FunctionName::Api];
        assert_eq!((api.memory_mib, api.timeout_s), (3008, 29));
    }
    let d = parse(
        "name: t\ndefaults: {functions: {authorizer: {memory_mib: 512}}}\nregions: {eu-west-1: {functions: {api: {timeout_s: 20}}}}",
    )
    .unwrap();
    let f = &d.regions[0].functions;
    assert_eq!(f[&FunctionName::Authorizer].memory_mib, 512);
    assert_eq!(f[&FunctionName::Api].timeout_s, 20);
}

#[test]
fn functions_get_the_environment_of_the_contract() {
    let s = &stacks("local")[0];
    let env = |id: &str| -> BTreeSet<String> {
        resources(s)[id]["Properties"]["Environment"]["Variables"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let names = |n: &[&str]| -> BTreeSet<String> { n.iter().map(|s| s.to_string()).collect() };
    assert_eq!(
        env("EnrollFunction"),
        names(&["FACE_BUCKET", "FACE_BUCKET_OWNER", "FACE_PEOPLE_TABLE"])
    );
    assert_eq!(
        env("ApiFunction"),
        names(&[
            "FACE_BUCKET",
            "FACE_BUCKET_OWNER",
            "FACE_PEOPLE_TABLE",
            "FACE_RESULTS_TABLE",
            "FACE_UPLOAD_PREFIX",
            "FACE_DEFAULT_COLLECTION",
            "FACE_API_KEYS_TABLE",
            "FACE_JOBS_TABLE",
            "FACE_SCAN_QUEUE_URL",
        ])
    );
    assert_eq!(
        env("ScanWorkerFunction"),
        names(&[
            "FACE_BUCKET",
            "FACE_BUCKET_OWNER",
            "FACE_PEOPLE_TABLE",
            "FACE_RESULTS_TABLE",
            "FACE_RESULTS_QUEUE_URL",
            "FACE_RESULTS_TOPIC_ARN",
            "FACE_JOBS_TABLE",
            "FACE_SCAN_QUEUE_URL",
            "FACE_SCAN_MAX_RECEIVE_COUNT",
        ])
    );
    assert_eq!(env("AuthorizerFunction"), names(&["FACE_API_KEYS_TABLE"]));
    assert_eq!(
        env("RecognizeFunction"),
        [
            "FACE_BUCKET",
            "FACE_BUCKET_OWNER",
            "FACE_PEOPLE_TABLE",
            "FACE_RESULTS_TABLE",
            "FACE_RESULTS_QUEUE_URL",
            "FACE_UPLOAD_PREFIX",
            "FACE_DEFAULT_COLLECTION",
            "FACE_JOBS_TABLE",
            "FACE_SCAN_QUEUE_URL",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );
}

#[test]
fn functions_expect_the_stacks_account_to_own_the_bucket() {
    for s in all_stacks() {
        for (id, r) in resources(&s) {
            if r["Type"] != "AWS::Lambda::Function" || id == "AuthorizerFunction" {
                continue;
            }
            assert_eq!(
                r["Properties"]["Environment"]["Variables"]["FACE_BUCKET_OWNER"],
                json!({"Ref": "AWS::AccountId"}),
                "{} {id}",
                s.stack_name
            );
        }
    }
}

#[test]
fn list_bucket_is_granted_under_each_functions_prefixes_only() {
    for s in all_stacks() {
        let r = resources(&s);
        for (role, want) in [
            ("EnrollRole", vec!["collections/*", "uploads/*"]),
            ("RecognizeRole", vec!["collections/*", "uploads/*"]),
            ("ApiRole", vec!["collections/*", "uploads/*"]),
            (
                "ScanWorkerRole",
                vec!["collections/*", "scans/*", "uploads/*"],
            ),
        ] {
            let doc = &r[role]["Properties"]["Policies"][0]["PolicyDocument"];
            let lists: Vec<&Value> = doc["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|st| {
                    st["Action"]
                        .as_array()
                        .unwrap()
                        .contains(&json!("s3:ListBucket"))
                })
                .collect();
            assert_eq!(lists.len(), 1, "{} {role}", s.stack_name);
            assert_eq!(
                lists[0]["Condition"],
                json!({"StringLike": {"s3:prefix": want}}),
                "{} {role}",
                s.stack_name
            );
        }
    }
}

#[test]
fn work_queue_hides_messages_for_six_function_timeouts_and_reports_partial_failures() {
    for s in all_stacks() {
        let r = resources(&s);
        let timeout = r["RecognizeFunction"]["Properties"]["Timeout"]
            .as_u64()
            .unwrap();
        let visibility = r["WorkQueue"]["Properties"]["VisibilityTimeout"]
            .as_u64()
            .unwrap();
        assert!(
            visibility >= 6 * timeout,
            "{}: {visibility} < 6 x {timeout}",
            s.region
        );
        let esm = &r["WorkQueueToRecognize"]["Properties"];
        assert_eq!(esm["FunctionResponseTypes"][0], "ReportBatchItemFailures");
        // The scan queue: six worker timeouts, one chunk per invocation,
        // its own dead-letter queue.
        let worker_timeout = r["ScanWorkerFunction"]["Properties"]["Timeout"]
            .as_u64()
            .unwrap();
        let scan = &r["ScanQueue"]["Properties"];
        assert!(scan["VisibilityTimeout"].as_u64().unwrap() >= 6 * worker_timeout);
        assert!(scan["RedrivePolicy"]["deadLetterTargetArn"].is_object());
        let scan_esm = &r["ScanQueueToScanWorker"]["Properties"];
        assert_eq!(scan_esm["BatchSize"], 1);
        assert_eq!(
            scan_esm["FunctionResponseTypes"][0],
            "ReportBatchItemFailures"
        );
        assert_eq!(describe(&esm["EventSourceArn"]), "WorkQueue.Arn");
        assert_eq!(
            describe(&r["WorkQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]),
            "WorkQueueDeadLetter.Arn"
        );
    }
}

#[test]
fn bucket_is_private_encrypted_and_versioned() {
    for s in all_stacks() {
        let b = &resources(&s)["DataBucket"]["Properties"];
        let block = &b["PublicAccessBlockConfiguration"];
        for k in [
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        ] {
            assert_eq!(block[k], true, "{k}");
        }
        assert_eq!(b["VersioningConfiguration"]["Status"], "Enabled");
        assert!(b["BucketEncryption"]["ServerSideEncryptionConfiguration"][0].is_object());
    }
}

#[test]
fn notifications_point_uploads_at_the_work_queue() {
    for s in all_stacks() {
        assert_eq!(s.notifications.len(), 1);
        let n = &s.notifications[0];
        assert_eq!(n.key_prefix, "uploads/");
        for output in [n.bucket_output, n.queue_arn_output] {
            assert!(s.template.outputs.contains_key(output), "{output}");
        }
        // The template holds it itself: any tool that deploys the
        // template gets the uploads flowing.
        let bucket = &resources(&s)["DataBucket"];
        let configs = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
            .as_array()
            .expect("queue notifications in the template");
        assert_eq!(configs.len(), 1);
        assert_eq!(configs[0]["Event"], "s3:ObjectCreated:*");
        assert_eq!(describe(&configs[0]["Queue"]), "WorkQueue.Arn");
        assert_eq!(
            configs[0]["Filter"]["S3Key"]["Rules"][0]["Value"],
            "uploads/"
        );
        // S3 tests the destination when the notification is set: the
        // queue policy must exist first.
        assert!(dependencies(bucket).contains("WorkQueuePolicy"));
    }
}

/// The resources `resource` waits for: its `DependsOn`, `Ref`s and
/// `Fn::GetAtt`s (parameters and pseudo parameters included).
fn dependencies(resource: &Value) -> BTreeSet<&str> {
    fn walk<'a>(v: &'a Value, out: &mut BTreeSet<&'a str>) {
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    match (k.as_str(), v) {
                        ("Ref", Value::String(id)) => {
                            out.insert(id);
                        }
                        ("Fn::GetAtt", Value::Array(a)) => {
                            if let Some(id) = a.first().and_then(Value::as_str) {
                                out.insert(id);
                            }
                        }
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(resource, &mut out);
    match &resource["DependsOn"] {
        Value::String(id) => {
            out.insert(id);
        }
        Value::Array(ids) => out.extend(ids.iter().filter_map(Value::as_str)),
        _ => {}
    }
    out
}

#[test]
fn templates_have_no_dependency_cycle() {
    for s in all_stacks() {
        let res = resources(&s);
        // Kahn's algorithm over resource → resource edges.
        let edges: BTreeMap<&str, BTreeSet<&str>> = res
            .iter()
            .map(|(id, r)| {
                let deps = dependencies(r)
                    .into_iter()
                    .filter(|d| res.contains_key(*d) && d != id)
                    .collect();
                (id.as_str(), deps)
            })
            .collect();
        let mut done: BTreeSet<&str> = BTreeSet::new();
        loop {
            let ready: Vec<&str> = edges
                .iter()
                .filter(|(id, deps)| !done.contains(*id) && deps.is_subset(&done))
                .map(|(id, _)| *id)
                .collect();
            if ready.is_empty() {
                break;
            }
            done.extend(ready);
        }
        let stuck: Vec<&&str> = edges.keys().filter(|id| !done.contains(**id)).collect();
        assert!(stuck.is_empty(), "{}: a cycle among {stuck:?}", s.region);
    }
}

#[test]
fn production_data_outlives_the_stack() {
    let tables = [
        "PeopleTable",
        "ResultsTable",
        "ApiKeysTable",
        "ScanJobsTable",
    ];
    for (name, production) in [("local", false), ("dev", false), ("prod", true)] {
        for s in stacks(name) {
            let policy = if production { "Retain" } else { "Delete" };
            for id in tables.iter().chain(&["DataBucket"]) {
                let r = &resources(&s)[*id];
                assert_eq!(r["DeletionPolicy"], policy, "{name} {id}");
                assert_eq!(r["UpdateReplacePolicy"], policy, "{name} {id}");
            }
            for id in tables {
                let protection = &resources(&s)[id]["Properties"]["DeletionProtectionEnabled"];
                assert_eq!(
                    protection.as_bool() == Some(true),
                    production,
                    "{name} {id}"
                );
            }
            // Queues, functions and logs hold no data: deleted either way.
            assert_eq!(resources(&s)["WorkQueue"]["DeletionPolicy"], "Delete");
        }
    }
}

#[test]
fn alarms_watch_every_dead_letter_queue_and_function() {
    for s in all_stacks() {
        let alarms = of_type(&s, "AWS::CloudWatch::Alarm");
        let watched: BTreeSet<(String, String)> = alarms
            .iter()
            .map(|(_, a)| {
                let p = &a["Properties"];
                assert_eq!(describe(&p["AlarmActions"][0]), "AlarmTopic");
                assert_eq!(p["Threshold"], 0);
                assert_eq!(p["ComparisonOperator"], "GreaterThanThreshold");
                (
                    p["MetricName"].as_str().unwrap().to_string(),
                    describe(&p["Dimensions"][0]["Value"]),
                )
            })
            .collect();
        let mut expected = BTreeSet::new();
        for dlq in ["WorkQueueDeadLetter", "ScanQueueDeadLetter"] {
            expected.insert((
                "ApproximateNumberOfMessagesVisible".to_string(),
                format!("{dlq}.QueueName"),
            ));
        }
        for f in FunctionName::ALL {
            for metric in ["Errors", "Throttles"] {
                expected.insert((metric.to_string(), format!("{}Function", f.camel())));
            }
        }
        assert_eq!(watched, expected, "{}", s.region);
        // CloudWatch cannot publish to a topic under SNS's AWS managed key.
        let topic = &resources(&s)["AlarmTopic"]["Properties"];
        assert!(topic.get("KmsMasterKeyId").is_none());
        assert!(s.template.outputs.contains_key("AlarmTopicArn"));
    }
}

#[test]
fn code_locations_are_parameters_defaulting_to_the_built_zips() {
    let built = assets();
    for s in all_stacks() {
        let params = &s.template.parameters;
        assert_eq!(params["CodeBucket"]["Default"], "");
        for f in FunctionName::ALL {
            let code = &resources(&s)[&format!("{}Function", f.camel())]["Properties"]["Code"];
            let param = format!("{}CodeKey", f.camel());
            assert_eq!(describe(&code["S3Key"]), param);
            assert!(
                built.keys.values().any(|k| params[&param]["Default"] == *k),
                "{param}: {}",
                params[&param]
            );
            assert_eq!(code["S3Bucket"]["Fn::If"][0], "DefaultCodeBucket");
        }
    }
}

#[test]
fn prod_layers_region_function_and_shared_settings() {
    let d = Deployment::embedded("prod").unwrap().unwrap();
    let eu = d.region("eu-west-1").unwrap();
    let us = d.region("us-east-1").unwrap();
    assert_eq!(eu.work_share, 0.7);
    assert_eq!(us.work_share, 0.3);
    let enroll = eu.functions[&FunctionName::Enroll];
    assert_eq!((enroll.memory_mib, enroll.timeout_s), (2048, 60));
    let recognize = eu.functions[&FunctionName::Recognize];
    assert_eq!((recognize.memory_mib, recognize.timeout_s), (3008, 120));
    assert_eq!(recognize.reserved_concurrency, Some(50));
    assert_eq!(
        us.functions[&FunctionName::Recognize].reserved_concurrency,
        Some(20)
    );
    assert_eq!(eu.work_queue.visibility_timeout_s, 720);
}

fn parse(yaml: &str) -> Result<Deployment, StackError> {
    Deployment::from_yaml(yaml)
}

#[test]
fn visibility_under_six_timeouts_is_refused() {
    let err = parse(
        "name: t\ndefaults: {timeout_s: 100, visibility_timeout_s: 599}\nregions: {eu-west-1: {}}",
    )
    .unwrap_err();
    assert_eq!(
        err,
        StackError::VisibilityTooShort {
            region: "eu-west-1".into(),
            function: FunctionName::Recognize,
            visibility_s: 599,
            timeout_s: 100,
        }
    );
    assert!(parse("name: t\ndefaults: {timeout_s: 100, visibility_timeout_s: 600}\nregions: {eu-west-1: {}}").is_ok());
}

#[test]
fn work_shares_must_sum_to_one() {
    let err =
        parse("name: t\nregions: {eu-west-1: {work_share: 0.5}, us-east-1: {work_share: 0.6}}")
            .unwrap_err();
    assert!(
        matches!(err, StackError::WorkSharesDoNotSum { sum } if (sum - 1.1).abs() < 1e-9),
        "{err}"
    );
    let err =
        parse("name: t\nregions: {eu-west-1: {work_share: 0.5}, us-east-1: {work_share: 0.4}}")
            .unwrap_err();
    assert!(
        matches!(err, StackError::WorkSharesDoNotSum { .. }),
        "{err}"
    );
    let err = parse("name: t\nregions: {eu-west-1: {work_share: -0.5}}").unwrap_err();
    assert!(
        matches!(err, StackError::WorkShareOutOfRange { .. }),
        "{err}"
    );
    let err = parse("name: t\ndefaults: {work_share: 1}\nregions: {eu-west-1: {}}").unwrap_err();
    assert_eq!(err, StackError::WorkShareInDefaults);
    // Regions without a share split the rest equally.
    let d = parse("name: t\nregions: {eu-west-1: {work_share: 0.5}, us-east-1: {}, us-west-2: {}}")
        .unwrap();
    let shares: Vec<f64> = d.regions.iter().map(|r| r.work_share).collect();
    assert_eq!(shares, [0.5, 0.25, 0.25]);
}

#[test]
fn unknown_architecture_is_a_typed_error() {
    let err = parse("name: t\nregions: {eu-west-1: {functions: {enroll: {architecture: x86}}}}")
        .unwrap_err();
    assert_eq!(
        err,
        StackError::UnknownArchitecture {
            region: "eu-west-1".into(),
            function: FunctionName::Enroll,
            value: "x86".into(),
        }
    );
}

#[test]
fn bad_values_are_refused_with_their_reason() {
    let cases = [
        (
            "name: t\nregions: {eu-west-1: {memory_mib: 64}}",
            "memory_mib = 64 is outside 128..=10240",
        ),
        (
            "name: t\nregions: {eu-west-1: {timeout_s: 901}}",
            "timeout_s = 901",
        ),
        (
            "name: t\nregions: {eu-west-1: {max_concurrency: 1}}",
            "max_concurrency = 1",
        ),
        (
            "name: t\nregions: {eu-west-1: {max_concurrency: 10, reserved_concurrency: 5}}",
            "exceeds reserved_concurrency",
        ),
        (
            "name: t\nregions: {eu-west-1: {log_retention_days: 2}}",
            "log_retention_days = 2",
        ),
        (
            "name: t\nregions: {eu-west-1: {batch_size: 11}}",
            "batch_size = 11",
        ),
        ("name: T_1\nregions: {eu-west-1: {}}", "stack name"),
        ("name: t\nregions: {Europe: {}}", "not an AWS region"),
        ("name: t\nregions: {}", "no region"),
        (
            "name: t\nupload_prefix: uploads\nregions: {eu-west-1: {}}",
            "ending in '/'",
        ),
        (
            "name: t\nregions: {eu-west-1: {memroy_mib: 1024}}",
            "unknown field `memroy_mib`",
        ),
        (
            "name: t\nregions: {eu-west-1: {functions: {resize: {}}}}",
            "unknown variant `resize`",
        ),
        (
            "name: t\nregions: {eu-west-1: {functions: {api: {timeout_s: 30}}}}",
            "api: timeout_s = 30 is outside 1..=29",
        ),
        (
            "name: t\nregions: {eu-west-1: {api: {rate_per_s: 0}}}",
            "rate_per_s = 0",
        ),
        (
            "name: t\ndefaults: {api: {burst_limit: 10}}\nregions: {eu-west-1: {}}",
            "unknown field `burst_limit`",
        ),
    ];
    for (yaml, expected) in cases {
        let err = parse(yaml).expect_err(yaml).to_string();
        assert!(err.contains(expected), "{yaml}: {err}");
    }
}

#[test]
fn a_missing_artifact_is_a_typed_error() {
    let d = Deployment::embedded("dev").unwrap().unwrap();
    let err = d.synth(&Assets::default()).unwrap_err();
    assert!(
        matches!(
            err,
            StackError::MissingAsset {
                architecture: "arm64",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn functions_log_structured_json_into_their_own_group() {
    for s in all_stacks() {
        for f in FunctionName::ALL {
            let p = &resources(&s)[&format!("{}Function", f.camel())]["Properties"];
            let logging = &p["LoggingConfig"];
            assert_eq!(logging["LogFormat"], "JSON", "{f}");
            let group = &resources(&s)[&format!("{}LogGroup", f.camel())]["Properties"];
            assert_eq!(logging["LogGroup"], group["LogGroupName"], "{f}");
            // Tracing is opt-in.
            assert!(p.get("TracingConfig").is_none());
        }
    }
}

#[test]
fn xray_tracing_is_a_yaml_switch_with_its_grant() {
    let d = parse("name: t\ndefaults: {xray_tracing: true}\nregions: {eu-west-1: {}}").unwrap();
    let s = &d.synth(&assets()).unwrap()[0];
    for f in FunctionName::ALL {
        let camel = f.camel();
        let p = &resources(s)[&format!("{camel}Function")]["Properties"];
        assert_eq!(p["TracingConfig"]["Mode"], "Active", "{f}");
        let actions = role_actions(s, &format!("{camel}Role"));
        assert!(
            actions.contains(&("xray:PutTraceSegments".to_string(), "*".to_string())),
            "{f}: {actions:?}"
        );
    }
}

#[test]
fn the_dashboard_charts_every_function_and_queue() {
    for s in all_stacks() {
        let d = &resources(&s)["Dashboard"]["Properties"];
        let body = d["DashboardBody"]["Fn::Sub"].as_str().expect("a Sub body");
        let body: Value =
            serde_json::from_str(&body.replace("${AWS::Region}", &s.region)).expect("JSON body");
        let text = body.to_string();
        for f in FunctionName::ALL {
            let name = format!("{}-{f}", s.stack_name);
            assert!(text.contains(&format!("\"{name}\"")), "{name} not charted");
        }
        for q in ["work-dlq", "scan-dlq", "work", "scan"] {
            let name = format!("{}-{q}", s.stack_name);
            assert!(text.contains(&format!("\"{name}\"")), "{name} not charted");
        }
        let widgets = body["widgets"].as_array().unwrap();
        assert!(
            widgets
                .iter()
                .all(|w| w["properties"]["region"] == s.region.as_str())
        );
    }
}
