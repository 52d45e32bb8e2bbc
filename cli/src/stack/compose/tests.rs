use super::*;
use crate::config::envfile::EnvFile;
use crate::stack::images::ImageSet;
use crate::stack::spec::{MIGRATE, UP_RESTARTS};

fn images(postgres: &str) -> ImageSet {
    ImageSet {
        postgres: postgres.into(),
        gometr: "metrtest/gometr:1".into(),
        checker: "metrtest/checker:2".into(),
        api: "metrtest/api:3".into(),
    }
}

fn compose_of(env_file: &str, postgres: &str) -> ComposeFile {
    let file = EnvFile::parse(env_file, "metrtest.yaml").unwrap();
    let mut spec = StackSpec::build(&images(postgres), &file);
    spec.restart = Restart::OnFailure { max: UP_RESTARTS };
    ComposeFile::of(&spec)
}

fn compose(env_file: &str) -> ComposeFile {
    compose_of(env_file, postgres_image::OFFICIAL)
}

fn condition(file: &ComposeFile, service: &str, on: &str) -> Option<Condition> {
    let depends = &file.services.get(service).expect(service).depends_on;
    depends.get(on).map(|d| d.condition)
}

#[test]
fn the_default_stack_has_ups_services_in_start_order_with_the_built_images() {
    let file = compose("{}");
    assert_eq!(file.name, "metr");
    let names: Vec<&str> = file.services.keys().collect();
    assert_eq!(names, ["postgres", "gometr", "migrate", "checker", "api"]);
    let image = |name: &str| file.services.get(name).unwrap().image.as_str();
    assert_eq!(image("postgres"), postgres_image::OFFICIAL);
    assert_eq!(image("gometr"), "metrtest/gometr:1");
    assert_eq!(image("checker"), "metrtest/checker:2");
    assert_eq!(image("api"), "metrtest/api:3");
    assert_eq!(image(MIGRATE), "metrtest/api:3");
    for (name, service) in &file.services.0 {
        assert_eq!(service.pull_policy, "never", "{name}");
    }
}

#[test]
fn ports_are_on_loopback_and_the_api_listens_on_8080() {
    let file = compose("{}");
    let ports = |name: &str| file.services.get(name).unwrap().ports.clone();
    assert_eq!(ports("api"), ["127.0.0.1::8080"]);
    assert_eq!(ports("gometr"), ["127.0.0.1::8080"]);
    assert_eq!(ports("checker"), ["127.0.0.1::9090"]);
    assert_eq!(ports("postgres"), ["127.0.0.1::5432"]);
    assert!(ports(MIGRATE).is_empty(), "a one-shot step serves nothing");
    let api = file.services.get("api").unwrap();
    assert_eq!(api.environment["API_LISTEN"], "0.0.0.0:8080");
}

#[test]
fn the_migration_runs_once_in_postgres_namespace_and_the_services_wait_for_it() {
    let file = compose("{}");
    let migrate = file.services.get(MIGRATE).unwrap();
    assert_eq!(migrate.command, ["migrate"]);
    assert_eq!(migrate.network_mode.as_deref(), Some("service:postgres"));
    assert_eq!(migrate.restart, None, "compose's default: never");
    assert!(migrate.environment["API_DATABASE_URL"].contains("@127.0.0.1:5432/metr"));
    assert_eq!(
        condition(&file, MIGRATE, "postgres"),
        Some(Condition::ServiceHealthy)
    );
    for name in ["checker", "api"] {
        assert_eq!(
            condition(&file, name, MIGRATE),
            Some(Condition::ServiceCompletedSuccessfully),
            "{name}"
        );
        assert_eq!(
            condition(&file, name, "postgres"),
            Some(Condition::ServiceHealthy),
            "{name}"
        );
        let restart = &file.services.get(name).unwrap().restart;
        assert_eq!(restart.as_deref(), Some("on-failure:5"));
    }
}

#[test]
fn replicas_and_variables_come_from_the_environment_file() {
    let file = compose(
        "gometr: { replicas: 2 }\nenv:\n  gometr: { GOMETR_HEALTH: warn }\n  gometr-2: { GOMETR_DELAY_MS: '5' }\n  api: { API_QUERY_TIMEOUT: 9s }\n",
    );
    let names: Vec<&str> = file.services.keys().collect();
    assert_eq!(
        names,
        [
            "postgres", "gometr-1", "gometr-2", "migrate", "checker", "api"
        ]
    );
    let env = |name: &str| file.services.get(name).unwrap().environment.clone();
    assert_eq!(env("gometr-1")["GOMETR_HEALTH"], "warn");
    assert_eq!(env("gometr-2")["GOMETR_DELAY_MS"], "5");
    assert!(!env("gometr-1").contains_key("GOMETR_DELAY_MS"));
    assert_eq!(env("api")["API_QUERY_TIMEOUT"], "9s");
    assert!(env("checker")["CHECKER_TARGETS"].contains("http://gometr-2:8080"));
    for gometr in ["gometr-1", "gometr-2"] {
        assert_eq!(
            condition(&file, "checker", gometr),
            Some(Condition::ServiceHealthy),
            "each replica answers before the checker starts"
        );
    }
}

#[test]
fn a_dollar_in_a_value_stays_a_dollar_rather_than_a_compose_variable() {
    let file = compose("env:\n  api: { SECRET: 'a$b${c}' }\n");
    let api = file.services.get("api").unwrap();
    assert_eq!(api.environment["SECRET"], "a$$b$${c}");
}

#[test]
fn postgres_is_checked_with_what_its_image_has() {
    let official = compose("{}");
    let check = official
        .services
        .get("postgres")
        .unwrap()
        .healthcheck
        .clone();
    let test = check.expect("a health check").test;
    assert_eq!(test[..2], ["CMD", "pg_isready"]);
    assert!(
        test.windows(2).any(|w| w == ["-h", "127.0.0.1"]),
        "{test:?}"
    );

    let host = compose_of("{}", "metrtest/postgres-host:15-abc");
    let postgres = host.services.get("postgres").unwrap();
    let test = postgres.healthcheck.clone().expect("a health check").test;
    assert_eq!(test[..3], ["CMD", "/bin/sh", "-c"]);
    assert!(test[3].contains("$$PGDATA/postmaster.pid"), "{test:?}");
    assert!(postgres.read_only, "as `up` runs it");
    assert_eq!(host.services.get(MIGRATE).unwrap().healthcheck, None);
}

#[test]
fn our_services_probe_themselves_and_the_checker_waits_for_gometr_to_answer() {
    let file = compose_of("{}", "metrtest/postgres-host:15-abc");
    let test = |name: &str| {
        let service = file.services.get(name).unwrap();
        service.healthcheck.clone().map(|h| h.test)
    };
    assert_eq!(
        test("gometr").unwrap(),
        ["CMD", "/usr/local/bin/gometr", "health", "--answering"]
    );
    assert_eq!(
        test("checker").unwrap(),
        ["CMD", "/usr/local/bin/checker", "health"]
    );
    assert_eq!(
        test("api").unwrap(),
        ["CMD", "/usr/local/bin/api", "health"]
    );
    assert_eq!(
        condition(&file, "checker", "gometr"),
        Some(Condition::ServiceHealthy)
    );
}

#[test]
fn the_data_is_on_a_labelled_volume_unless_tmpfs_is_asked_for() {
    let file = compose("{}");
    let postgres = file.services.get("postgres").unwrap();
    assert_eq!(postgres.volumes.len(), 1);
    assert!(postgres.volumes[0].starts_with("postgres-pgdata:/var/lib/postgresql"));
    assert!(
        file.volumes["postgres-pgdata"]
            .labels
            .contains_key(EXPORTED_BY_LABEL)
    );
    let tmpfs = compose("postgres: { data: tmpfs }\n");
    assert!(tmpfs.volumes.is_empty());
    assert!(tmpfs.services.get("postgres").unwrap().volumes.is_empty());
}

#[test]
fn limits_and_hardening_are_the_stacks() {
    let file = compose("{}");
    let checker = file.services.get("checker").unwrap();
    assert_eq!(checker.mem_limit, "512m");
    assert_eq!(checker.memswap_limit, "512m");
    assert_eq!(checker.pids_limit, 1024);
    assert_eq!(checker.stop_grace_period, "30s");
    assert_eq!(checker.user.as_deref(), Some("65532:65532"));
    assert!(checker.read_only);
    assert_eq!(checker.cap_drop, ["ALL"]);
    assert_eq!(file.services.get("postgres").unwrap().mem_limit, "1024m");
}

#[test]
fn nothing_carries_metrtests_run_labels() {
    let yaml = compose("{}").to_yaml();
    assert!(!yaml.contains("io.metrtest."), "{yaml}");
}

#[test]
fn the_yaml_has_the_top_level_keys_of_a_compose_file_in_order() {
    let yaml = compose("{}").to_yaml();
    let value: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
    let keys: Vec<&str> = value
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(keys, ["name", "services", "networks", "volumes"]);
    assert_eq!(
        value["services"]["api"]["depends_on"]["migrate"]["condition"],
        "service_completed_successfully"
    );
    assert_eq!(value["services"]["api"]["pids_limit"], 1024);
}

#[test]
fn values_a_yaml_1_1_reader_would_take_for_booleans_stay_strings() {
    let yaml = compose("env:\n  gometr: { GOMETR_A: 'on', GOMETR_B: 'no' }\n").to_yaml();
    let value: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
    let env = value["services"]["gometr"]["environment"]
        .as_sequence()
        .unwrap();
    assert!(env.contains(&"GOMETR_A=on".into()), "{env:?}");
    assert!(env.contains(&"GOMETR_B=no".into()), "{env:?}");
    assert!(
        !yaml.contains(": no\n") && !yaml.contains(": on\n"),
        "{yaml}"
    );
}
