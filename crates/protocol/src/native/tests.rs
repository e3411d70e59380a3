use super::*;

fn ch(name: &str) -> ChannelName {
    ChannelName::new(name).unwrap()
}

#[test]
fn every_command_round_trips_through_its_encoding() {
    let data = JsonData::parse(r#"{"text":"hi","n":[1,2]}"#.to_string()).unwrap();
    let bodies = vec![
        CommandBody::Connect { token: Some("t".into()) },
        CommandBody::Connect { token: None },
        CommandBody::Subscribe { channel: ch("a"), since: None },
        CommandBody::Subscribe { channel: ch("a"), since: Some(StreamPosition::new(Epoch::new("e1"), 7)) },
        CommandBody::Unsubscribe { channel: ch("chat:x") },
        CommandBody::Publish {
            channel: ch("a"),
            event: Some("chat-message".into()),
            data: data.clone(),
            idempotency_key: Some("k".into()),
            ephemeral: false,
        },
        CommandBody::Publish { channel: ch("a"), event: None, data, idempotency_key: None, ephemeral: true },
        CommandBody::History {
            channel: ch("a"),
            query: HistoryParams { since: Some(3), limit: Some(10), reverse: true },
        },
        CommandBody::History { channel: ch("a"), query: HistoryParams::default() },
        CommandBody::Presence { channel: ch("a") },
        CommandBody::Edit { channel: ch("a"), offset: 42, data: JsonData::parse("[1]".into()).unwrap() },
        CommandBody::Delete { channel: ch("a"), offset: 42 },
        CommandBody::Typing { channel: ch("a") },
        CommandBody::Ping,
    ];
    for (i, body) in bodies.into_iter().enumerate() {
        let cmd = Command { id: i as u64 + 1, body };
        assert_eq!(Command::decode(&cmd.encode()).unwrap(), cmd);
    }
}

#[test]
fn malformed_json_is_a_bad_request_without_id() {
    let err = Command::decode("{not json").unwrap_err();
    assert_eq!(err.id, None);
    assert_eq!(err.error.code, ErrorCode::BadRequest);
}

#[test]
fn a_command_without_id_cannot_be_answered() {
    let err = Command::decode(r#"{"type":"ping"}"#).unwrap_err();
    assert_eq!(err.id, None);
}

#[test]
fn a_json_array_is_not_a_command_even_with_every_field_in_order() {
    let fields_in_order = r#"[1,"ping",null,null,null,null,null,null,null,null,null]"#;
    for text in ["[7]", fields_in_order, " \n[1]", "7", "\"ping\""] {
        let err = Command::decode(text).unwrap_err();
        assert_eq!(err.id, None, "{text} must close the connection, not get a reply");
        assert_eq!(err.error.code, ErrorCode::BadRequest);
    }
}

#[test]
fn unknown_command_type_is_answered_with_its_id() {
    let err = Command::decode(r#"{"id":9,"type":"dance"}"#).unwrap_err();
    assert_eq!(err.id, Some(9));
    assert_eq!(err.error.code, ErrorCode::UnknownCommand);
}

#[test]
fn wrong_field_types_keep_the_id_when_it_is_readable() {
    let err = Command::decode(r#"{"id":4,"type":"publish","channel":5,"data":1}"#).unwrap_err();
    assert_eq!(err.id, Some(4));
    assert_eq!(err.error.code, ErrorCode::BadRequest);
}

#[test]
fn invalid_channel_names_are_their_own_error() {
    let err = Command::decode(r#"{"id":1,"type":"subscribe","channel":"no spaces"}"#).unwrap_err();
    assert_eq!(err.error.code, ErrorCode::InvalidChannel);
}

#[test]
fn publish_without_data_is_refused() {
    let err = Command::decode(r#"{"id":1,"type":"publish","channel":"a"}"#).unwrap_err();
    assert_eq!(err.error.code, ErrorCode::BadRequest);
}

#[test]
fn publication_push_is_decoded_by_clients_as_encoded() {
    let publication = Publication::new(42, 1000, None, JsonData::parse("[1,\"x\"]".into()).unwrap())
        .with_author(Some(UserId::new("never-sent")));
    let frame = encode_publication(&ch("room:1"), &Epoch::new("ep"), &publication);
    assert_eq!(
        frame.as_str(),
        r#"{"type":"publication","channel":"room:1","epoch":"ep","offset":42,"time":1000,"data":[1,"x"]}"#
    );
    let decoded = ServerMessage::decode(frame.as_str()).unwrap();
    assert_eq!(
        decoded,
        ServerMessage::Publication {
            channel: ch("room:1"),
            epoch: Some(Epoch::new("ep")),
            publication: publication.with_author(None),
            skipped: 0,
        }
    );
}

#[test]
fn update_records_and_edited_messages_carry_their_marks_outside_the_data() {
    let (room, epoch) = (ch("room:1"), Epoch::new("ep"));
    let data = JsonData::parse(r#"{"text":"new"}"#.to_owned()).unwrap();
    let record = Publication::update_record(58, 1002, 42, data.clone()).with_author(Some(UserId::new("al")));
    let frame = encode_publication(&room, &epoch, &record);
    assert_eq!(
        frame.as_str(),
        r#"{"type":"publication","channel":"room:1","epoch":"ep","offset":58,"time":1002,"updates":42,"data":{"text":"new"}}"#
    );
    let ServerMessage::Publication { publication, .. } = ServerMessage::decode(frame.as_str()).unwrap()
    else {
        panic!("a publication push")
    };
    assert_eq!(publication, record.clone().with_author(None));
    let edited = Publication::new(42, 1000, None, data).edited_to(JsonData::parse("2".into()).unwrap());
    let text = serde_json::to_string(&edited).unwrap();
    assert_eq!(text, r#"{"offset":42,"time":1000,"data":2,"edited":true}"#);
    assert_eq!(serde_json::from_str::<Publication>(&text).unwrap(), edited);
    for bad in [
        r#"{"offset":1,"time":1,"deleted":true,"edited":true}"#,
        r#"{"offset":1,"time":1,"data":1,"updates":2,"edited":true}"#,
    ] {
        assert!(serde_json::from_str::<Publication>(bad).is_err(), "{bad}");
    }
}

#[test]
fn delete_records_and_tombstones_carry_no_data_and_decode_as_encoded() {
    let (room, epoch) = (ch("room:1"), Epoch::new("ep"));
    let record = Publication::delete_record(43, 1001, vec![40, 42]).with_author(Some(UserId::new("m")));
    assert_eq!(
        encode_publication(&room, &epoch, &record).as_str(),
        r#"{"type":"publication","channel":"room:1","epoch":"ep","offset":43,"time":1001,"deletes":[40,42]}"#
    );
    let tombstone = Publication::tombstone(42, 1000);
    let frame = encode_publication(&room, &epoch, &tombstone);
    assert_eq!(
        frame.as_str(),
        r#"{"type":"publication","channel":"room:1","epoch":"ep","offset":42,"time":1000,"deleted":true}"#
    );
    let ServerMessage::Publication { publication, .. } = ServerMessage::decode(frame.as_str()).unwrap()
    else {
        panic!("a publication push")
    };
    assert_eq!(publication, tombstone);
    assert_eq!(serde_json::to_string(&tombstone).unwrap(), r#"{"offset":42,"time":1000,"deleted":true}"#);
    assert_eq!(serde_json::to_string(&record).unwrap(), r#"{"offset":43,"time":1001,"deletes":[40,42]}"#);
    let history: Publication =
        serde_json::from_str(r#"{"offset":43,"time":1001,"deletes":[40,42]}"#).unwrap();
    assert_eq!(history, record.with_author(None));
    for forged in [r#"{"offset":1,"time":1,"data":1,"deletes":[1]}"#, r#"{"offset":1,"time":1}"#] {
        assert!(serde_json::from_str::<Publication>(forged).is_err(), "{forged}");
    }
}

#[test]
fn replies_decode_to_result_or_error() {
    let ok = encode_reply(3, &PublishResult { epoch: Some(Epoch::new("e")), offset: Some(1) });
    match ServerMessage::decode(ok.as_str()).unwrap() {
        ServerMessage::Reply { id: 3, outcome: Ok(data) } => {
            let r: PublishResult = serde_json::from_str(data.as_str()).unwrap();
            assert_eq!(r.offset, Some(1));
        }
        other => panic!("unexpected {other:?}"),
    }
    let err = encode_error(4, &ErrorInfo::new(ErrorCode::PermissionDenied, "no"));
    match ServerMessage::decode(err.as_str()).unwrap() {
        ServerMessage::Reply { id: 4, outcome: Err(e) } => assert_eq!(e.code, ErrorCode::PermissionDenied),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn disconnect_push_says_whether_to_reconnect() {
    let frame = encode_disconnect(CloseCode::SlowConsumer, None);
    match ServerMessage::decode(frame.as_str()).unwrap() {
        ServerMessage::Disconnect { code: 4501, reconnect: true, .. } => {}
        other => panic!("unexpected {other:?}"),
    }
}
