use super::*;
use proptest::prelude::*;

const MINUTE: Millis = 60_000;

fn agent(id: EmployeeId, skills: &[(&str, u8)], chats: u16) -> AgentProfile {
    AgentProfile {
        id,
        skills: skills.iter().map(|(s, l)| (s.to_string(), *l)).collect(),
        languages: vec!["zh".into(), "en".into()],
        capacity: BTreeMap::from([(Medium::Chat, chats), (Medium::Email, 5), (Medium::Call, 1)]),
        mode: Mode::Dedicated,
        location: None,
    }
}

fn task(id: ConversationId, waiting_since: Millis) -> TaskSpec {
    TaskSpec::new(id, ChannelKind::Web, waiting_since)
}

fn online(router: &mut Router, profile: AgentProfile, now: Millis) -> Vec<Effect> {
    let id = profile.id;
    router.handle_all(
        vec![
            Event::AgentUpdated(profile),
            Event::PresenceChanged {
                agent: id,
                presence: Presence::Online,
            },
        ],
        now,
    )
}

fn offers(effects: &[Effect]) -> Vec<(OfferId, ConversationId, EmployeeId)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Offer {
                offer,
                conversation,
                agent,
                ..
            } => Some((*offer, *conversation, *agent)),
            _ => None,
        })
        .collect()
}

#[test]
fn offers_to_the_best_fit_and_says_why() {
    let mut router = Router::new(Policy::default());
    online(&mut router, agent(1, &[("billing", 2)], 5), 0);
    online(&mut router, agent(2, &[("billing", 5)], 5), 0);
    let mut spec = task(10, 0);
    spec.required_skills.insert("billing".into(), 1);
    let effects = router.handle(Event::TaskArrived(spec), 1000);
    let Some(Effect::Offer {
        agent, decision, ..
    }) = effects.first()
    else {
        panic!("{effects:?}")
    };
    assert_eq!(*agent, 2);
    assert_eq!(decision.method, "greedy");
    assert_eq!(decision.eligible, 2);
    assert_eq!(decision.runners_up[0].agent, 1);
    let fit = decision
        .chosen
        .terms
        .iter()
        .find(|t| t.name == "skill_fit")
        .unwrap();
    assert_eq!(fit.value, 1.0);
    router.check_invariants(1000).unwrap();
}

#[test]
fn hard_rules_filter() {
    let mut router = Router::new(Policy::default());
    let mut english_only = agent(1, &[("billing", 5)], 5);
    english_only.languages = vec!["en".into()];
    online(&mut router, english_only, 0);
    online(&mut router, agent(2, &[("tech", 5)], 5), 0);
    let mut spec = task(10, 0);
    spec.required_skills.insert("billing".into(), 3);
    spec.language = Some("zh".into());
    let effects = router.handle(Event::TaskArrived(spec), 0);
    assert!(offers(&effects).is_empty(), "{effects:?}");
    assert_eq!(router.queued(), vec![10]);
    assert_eq!(router.position(10), Some(1));
    // A Chinese-speaking billing expert comes online: offered at once.
    let effects = online(&mut router, agent(3, &[("billing", 3)], 5), 5 * MINUTE);
    assert_eq!(offers(&effects)[0].2, 3);
    router.check_invariants(5 * MINUTE).unwrap();
}

#[test]
fn capacity_is_never_exceeded_and_the_queue_is_first_in_first_out() {
    let mut router = Router::new(Policy::default());
    online(&mut router, agent(1, &[], 2), 0);
    let mut offered = Vec::new();
    for id in 1..=4 {
        let effects = router.handle(Event::TaskArrived(task(id, id as Millis)), id as Millis);
        for (offer, conversation, _) in offers(&effects) {
            router.handle(Event::OfferAccepted { offer }, id as Millis);
            offered.push(conversation);
        }
    }
    assert_eq!(offered, vec![1, 2]);
    assert_eq!(router.load(1, Medium::Chat), 2);
    assert_eq!(router.queued(), vec![3, 4]);
    // Conversation 1 resolved: the oldest waiting (3) is next, not the newest.
    let effects = router.handle(Event::TaskFinished { conversation: 1 }, 100);
    assert_eq!(offers(&effects)[0].1, 3);
    router.check_invariants(100).unwrap();
}

#[test]
fn more_urgent_and_vip_conversations_go_first() {
    let mut router = Router::new(Policy::default());
    router.handle(Event::TaskArrived(task(1, 0)), 0);
    let mut urgent = task(2, 10);
    urgent.urgency = Urgency::Urgent;
    router.handle(Event::TaskArrived(urgent), 10);
    let mut vip = task(3, 20);
    vip.vip_tier = 2;
    router.handle(Event::TaskArrived(vip), 20);
    assert_eq!(router.queued(), vec![2, 3, 1]);
}

#[test]
fn a_decline_reoffers_to_someone_else_and_a_missed_offer_twice_sets_away() {
    let mut router = Router::new(Policy::default());
    online(&mut router, agent(1, &[("billing", 5)], 5), 0);
    online(&mut router, agent(2, &[("billing", 3)], 5), 0);
    let effects = router.handle(Event::TaskArrived(task(10, 0)), 0);
    let (offer, _, first) = offers(&effects)[0];
    let effects = router.handle(Event::OfferDeclined { offer }, 1000);
    let (_, _, second) = offers(&effects)[0];
    assert_ne!(first, second);
    router.check_invariants(1000).unwrap();

    // Employee 2 now ignores two offers and is set away.
    let mut router = Router::new(Policy::default());
    online(&mut router, agent(2, &[], 5), 0);
    router.handle(Event::TaskArrived(task(20, 0)), 0);
    router.handle(Event::TaskArrived(task(21, 0)), 0);
    let deadline = router.next_deadline().unwrap();
    let effects = router.handle(Event::Tick, deadline);
    assert!(effects.contains(&Effect::PresenceChanged {
        agent: 2,
        presence: Presence::Away
    }));
    assert_eq!(router.presence(2), Some(Presence::Away));
    assert_eq!(router.load(2, Medium::Chat), 0);
    // Both wait, and are not offered to employee 2 again even once back.
    let effects = router.handle(
        Event::PresenceChanged {
            agent: 2,
            presence: Presence::Online,
        },
        deadline + 1,
    );
    assert!(offers(&effects).is_empty());
    assert_eq!(router.queued(), vec![20, 21]);
    router.check_invariants(deadline + 1).unwrap();
}

#[test]
fn part_time_responders_answer_only_after_the_delay_and_up_to_their_cap() {
    let mut router = Router::new(Policy::default());
    let mut engineer = agent(7, &[("tech", 5)], 3);
    engineer.mode = Mode::PartTime {
        delay_ms: 2 * MINUTE,
        daily_cap: 1,
    };
    online(&mut router, engineer, 0);
    let effects = router.handle(Event::TaskArrived(task(1, 0)), 0);
    assert!(offers(&effects).is_empty());
    let effects = router.handle(Event::Tick, MINUTE);
    assert!(offers(&effects).is_empty());
    let effects = router.handle(Event::Tick, 2 * MINUTE);
    let (offer, conversation, agent_id) = offers(&effects)[0];
    assert_eq!((conversation, agent_id), (1, 7));
    router.handle(Event::OfferAccepted { offer }, 2 * MINUTE);
    // The daily cap of one is reached.
    router.handle(Event::TaskArrived(task(2, 0)), 2 * MINUTE);
    let effects = router.handle(Event::Tick, 10 * MINUTE);
    assert!(offers(&effects).is_empty());
    // A dedicated colleague beats a part-time one when both may answer.
    let mut router = Router::new(Policy::default());
    let mut sales = agent(8, &[("tech", 5)], 3);
    sales.mode = Mode::PartTime {
        delay_ms: 0,
        daily_cap: 10,
    };
    online(&mut router, sales, 0);
    online(&mut router, agent(9, &[("tech", 5)], 3), 0);
    let effects = router.handle(Event::TaskArrived(task(3, 0)), 0);
    assert_eq!(offers(&effects)[0].2, 9);
}

#[test]
fn several_free_employees_and_waiting_conversations_are_matched_jointly() {
    let mut router = Router::new(Policy::default());
    // Billing expert who also knows tech; a billing-only colleague.
    router.handle(
        Event::AgentUpdated(agent(1, &[("billing", 5), ("tech", 5)], 1)),
        0,
    );
    router.handle(Event::AgentUpdated(agent(2, &[("billing", 4)], 1)), 0);
    let mut billing = task(10, 0);
    billing.wanted_skills = vec!["billing".into()];
    let mut tech = task(11, 1);
    tech.wanted_skills = vec!["tech".into()];
    router.handle(Event::TaskArrived(billing), 1);
    router.handle(Event::TaskArrived(tech), 1);
    // The shift starts: both come online together.
    let effects = router.handle_all(
        vec![
            Event::PresenceChanged {
                agent: 1,
                presence: Presence::Online,
            },
            Event::PresenceChanged {
                agent: 2,
                presence: Presence::Online,
            },
        ],
        2,
    );
    let mut pairs: Vec<(ConversationId, EmployeeId)> =
        offers(&effects).iter().map(|(_, c, a)| (*c, *a)).collect();
    pairs.sort();
    // Greedy in queue order would give the billing conversation to 1 and leave tech to 2.
    assert_eq!(pairs, vec![(10, 2), (11, 1)]);
    let Effect::Offer { decision, .. } = &effects[0] else {
        panic!()
    };
    assert_eq!(decision.method, "joint");
    router.check_invariants(2).unwrap();
}

#[test]
fn rounds_larger_than_a_batch_still_serve_everyone() {
    let mut router = Router::new(Policy {
        batch_limit: 2,
        ..Policy::default()
    });
    for id in 1..=7 {
        router.handle(Event::AgentUpdated(agent(id, &[], 1)), 0);
        router.handle(Event::TaskArrived(task(100 + id, 0)), 0);
    }
    let effects = router.handle_all(
        (1..=7)
            .map(|agent| Event::PresenceChanged {
                agent,
                presence: Presence::Online,
            })
            .collect(),
        1,
    );
    assert_eq!(offers(&effects).len(), 7);
    assert!(router.queued().is_empty());
    router.check_invariants(1).unwrap();
}

#[test]
fn an_earlier_conversation_is_not_passed_over_for_a_later_one() {
    let mut router = Router::new(Policy::default());
    router.handle(Event::AgentUpdated(agent(1, &[("a", 1), ("b", 5)], 1)), 0);
    let mut first = task(1, 0);
    first.wanted_skills = vec!["a".into()];
    let mut second = task(2, 1);
    second.wanted_skills = vec!["b".into()];
    router.handle(Event::TaskArrived(first), 1);
    router.handle(Event::TaskArrived(second), 1);
    let effects = online(&mut router, agent(1, &[("a", 1), ("b", 5)], 1), 2);
    // One seat: the first in line gets it even though the later one fits better.
    assert_eq!(offers(&effects)[0].1, 1);
}

#[test]
fn offers_end_when_the_conversation_or_the_employee_goes() {
    let mut router = Router::new(Policy::default());
    online(&mut router, agent(1, &[], 1), 0);
    let effects = router.handle(Event::TaskArrived(task(1, 0)), 0);
    let (offer, _, _) = offers(&effects)[0];
    let effects = router.handle(Event::TaskFinished { conversation: 1 }, 10);
    assert!(effects.contains(&Effect::OfferWithdrawn {
        offer,
        conversation: 1,
        agent: 1,
        reason: WithdrawReason::ConversationGone
    }));
    assert_eq!(router.load(1, Medium::Chat), 0);
    let effects = router.handle(Event::TaskArrived(task(2, 10)), 10);
    assert_eq!(offers(&effects).len(), 1);
    let effects = router.handle(
        Event::PresenceChanged {
            agent: 1,
            presence: Presence::Offline,
        },
        20,
    );
    assert!(matches!(
        effects[0],
        Effect::OfferWithdrawn {
            reason: WithdrawReason::AgentGone,
            ..
        }
    ));
    assert_eq!(router.queued(), vec![2]);
    // Going offline is not declining: back online, they get it.
    let effects = router.handle(
        Event::PresenceChanged {
            agent: 1,
            presence: Presence::Online,
        },
        30,
    );
    assert_eq!(offers(&effects)[0].1, 2);
    router.check_invariants(30).unwrap();
}

#[derive(Debug, Clone)]
enum Step {
    Agent {
        id: u64,
        skill: u8,
        chats: u16,
        part_time: bool,
    },
    Presence {
        id: u64,
        online: bool,
    },
    Shift {
        id: u64,
        off_shift: bool,
        quiet: bool,
    },
    Arrive {
        id: u64,
        skill: Option<u8>,
        urgent: bool,
        email: bool,
    },
    Accept {
        nth: usize,
    },
    Decline {
        nth: usize,
    },
    Finish {
        id: u64,
    },
    Assign {
        id: u64,
        agent: u64,
    },
    Wait {
        ms: Millis,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1..6u64, 0..3u8, 0..4u16, any::<bool>()).prop_map(|(id, skill, chats, part_time)| {
            Step::Agent {
                id,
                skill,
                chats,
                part_time,
            }
        }),
        (1..6u64, any::<bool>()).prop_map(|(id, online)| Step::Presence { id, online }),
        (1..6u64, any::<bool>(), any::<bool>()).prop_map(|(id, off_shift, quiet)| Step::Shift {
            id,
            off_shift,
            quiet
        }),
        (
            1..30u64,
            proptest::option::of(0..3u8),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(id, skill, urgent, email)| Step::Arrive {
                id,
                skill,
                urgent,
                email
            }),
        (0..4usize).prop_map(|nth| Step::Accept { nth }),
        (0..4usize).prop_map(|nth| Step::Decline { nth }),
        (1..30u64).prop_map(|id| Step::Finish { id }),
        (1..30u64, 1..6u64).prop_map(|(id, agent)| Step::Assign { id, agent }),
        (0..90_000i64).prop_map(|ms| Step::Wait { ms }),
    ]
}

#[test]
fn escalations_reach_employees_in_focus_and_part_timers_at_once() {
    let mut router = Router::new(Policy::default());
    let mut engineer = agent(1, &[("rnd", 5)], 2);
    engineer.mode = Mode::PartTime {
        delay_ms: 10 * MINUTE,
        daily_cap: 3,
    };
    router.handle_all(
        vec![
            Event::AgentUpdated(engineer),
            Event::PresenceChanged {
                agent: 1,
                presence: Presence::Focus,
            },
        ],
        0,
    );
    let mut ordinary = task(10, 0);
    ordinary.required_skills.insert("rnd".into(), 1);
    assert!(offers(&router.handle(Event::TaskArrived(ordinary), 1000)).is_empty());
    let mut escalated = task(11, 0);
    escalated.required_skills.insert("rnd".into(), 1);
    escalated.escalated = true;
    let made = offers(&router.handle(Event::TaskArrived(escalated), 2000));
    assert_eq!(
        made.iter().map(|o| (o.1, o.2)).collect::<Vec<_>>(),
        vec![(11, 1)]
    );
    router.check_invariants(2000).unwrap();
}

#[test]
fn outside_working_hours_only_escalations_reach_and_quiet_hours_keep_everything_away() {
    let mut router = Router::new(Policy::default());
    online(&mut router, agent(1, &[("sales", 3)], 2), 0);
    router.handle(
        Event::ShiftChanged {
            agent: 1,
            off_shift: true,
            quiet: false,
        },
        0,
    );
    assert!(offers(&router.handle(Event::TaskArrived(task(10, 0)), 1000)).is_empty());
    let mut escalated = task(11, 0);
    escalated.escalated = true;
    let effects = router.handle(Event::TaskArrived(escalated), 2000);
    let Some(Effect::Offer {
        conversation,
        decision,
        ..
    }) = effects.first()
    else {
        panic!("{effects:?}")
    };
    assert_eq!(*conversation, 11);
    let off_hours = decision
        .chosen
        .terms
        .iter()
        .find(|t| t.name == "off_hours")
        .unwrap();
    assert_eq!(off_hours.value, -1.0);
    // Quiet hours: not even an escalation; back on shift, the waiting one is offered at once.
    router.handle(
        Event::ShiftChanged {
            agent: 1,
            off_shift: true,
            quiet: true,
        },
        3000,
    );
    let mut another = task(12, 0);
    another.escalated = true;
    assert!(offers(&router.handle(Event::TaskArrived(another), 4000)).is_empty());
    let made = offers(&router.handle(
        Event::ShiftChanged {
            agent: 1,
            off_shift: false,
            quiet: false,
        },
        5000,
    ));
    assert_eq!(made.len(), 1, "{made:?}");
    router.check_invariants(5000).unwrap();
}

#[test]
fn a_transfer_holds_the_owner_until_the_receiver_accepts() {
    let mut router = Router::new(Policy::default());
    online(&mut router, agent(1, &[], 1), 0);
    router.handle(
        Event::TaskAssigned {
            conversation: 10,
            agent: 1,
            channel: ChannelKind::Web,
        },
        0,
    );
    assert_eq!(router.load(1, Medium::Chat), 1);
    // To a named person who is not online yet: it waits, the owner keeps it.
    let mut spec = task(10, 0);
    spec.only_agent = Some(2);
    spec.held_by = Some(1);
    spec.exclude = vec![1];
    assert!(offers(&router.handle(Event::TaskArrived(spec), 1000)).is_empty());
    assert_eq!(router.load(1, Medium::Chat), 1);
    router.check_invariants(1000).unwrap();
    online(&mut router, agent(3, &[], 5), 1500);
    assert!(
        router.queued().contains(&10),
        "only the named person may take it"
    );
    let made = offers(&online(&mut router, agent(2, &[], 5), 2000));
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].2, 2);
    router.check_invariants(2000).unwrap();
    let effects = router.handle(Event::OfferAccepted { offer: made[0].0 }, 3000);
    assert!(matches!(effects[0], Effect::Assigned { agent: 2, .. }));
    assert_eq!(
        router.load(1, Medium::Chat),
        0,
        "the hold ends on acceptance"
    );
    assert_eq!(router.load(2, Medium::Chat), 1);
    router.check_invariants(3000).unwrap();
}

#[test]
fn reading_a_waiting_conversation_again_keeps_who_declined_it() {
    let mut router = Router::new(Policy::default());
    online(&mut router, agent(1, &[], 5), 0);
    let made = offers(&router.handle(Event::TaskArrived(task(10, 0)), 0));
    router.handle(Event::OfferDeclined { offer: made[0].0 }, 100);
    let mut relabelled = task(10, 0);
    relabelled.urgency = Urgency::High;
    assert!(offers(&router.handle(Event::TaskArrived(relabelled), 200)).is_empty());
    assert_eq!(router.queued(), vec![10]);
    router.check_invariants(200).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever happens: never over capacity, never two owners, the load each employee holds
    /// is what they own and are offered, no conversation waits while someone who may take it
    /// has room, and an offer never skips an earlier conversation of the same priority that
    /// its employee could have taken instead.
    #[test]
    fn invariants_hold_under_any_sequence(steps in proptest::collection::vec(step(), 1..80)) {
        let mut router = Router::new(Policy::default());
        let mut now: Millis = 0;
        let mut open_offers: Vec<OfferId> = Vec::new();
        for step in steps {
            let event = match step {
                Step::Agent { id, skill, chats, part_time } => {
                    let mut profile = agent(id, &[("s", skill)], chats);
                    if part_time {
                        profile.mode = Mode::PartTime { delay_ms: 30_000, daily_cap: 3 };
                    }
                    Event::AgentUpdated(profile)
                }
                Step::Presence { id, online } => Event::PresenceChanged {
                    agent: id,
                    presence: if online { Presence::Online } else { Presence::Away },
                },
                Step::Shift { id, off_shift, quiet } => Event::ShiftChanged {
                    agent: id,
                    off_shift,
                    quiet,
                },
                Step::Arrive { id, skill, urgent, email } => {
                    let mut spec = task(id, now);
                    spec.escalated = id % 7 == 0;
                    if let Some(level) = skill {
                        spec.required_skills.insert("s".into(), level);
                    }
                    if urgent {
                        spec.urgency = Urgency::Urgent;
                    }
                    if email {
                        spec.channel = ChannelKind::Email;
                    }
                    Event::TaskArrived(spec)
                }
                Step::Accept { nth } => match open_offers.get(nth) {
                    Some(offer) => Event::OfferAccepted { offer: *offer },
                    None => Event::Tick,
                },
                Step::Decline { nth } => match open_offers.get(nth) {
                    Some(offer) => Event::OfferDeclined { offer: *offer },
                    None => Event::Tick,
                },
                Step::Finish { id } => Event::TaskFinished { conversation: id },
                Step::Assign { id, agent } => Event::TaskAssigned {
                    conversation: id,
                    agent,
                    channel: ChannelKind::Web,
                },
                Step::Wait { ms } => {
                    now += ms;
                    Event::Tick
                }
            };
            let effects = router.handle(event, now);
            for effect in &effects {
                match effect {
                    Effect::Offer { offer, conversation, agent, .. } => {
                        open_offers.push(*offer);
                        // Never over capacity: an offer only goes to someone with room (an
                        // assignment by hand may go past it; routing then offers nothing more).
                        let medium = Medium::of(router.tasks[conversation].spec.channel);
                        let capacity = router.agents[agent].profile.capacity[&medium];
                        prop_assert!(router.load(*agent, medium) <= capacity);
                        // First in, first out within equal priority.
                        let offered = &router.tasks[conversation];
                        let a = &router.agents[agent];
                        for waiting in router.tasks.values() {
                            if waiting.state == TaskState::Queued
                                && waiting.order < offered.order
                                && waiting.order.urgency == offered.order.urgency
                                && waiting.order.vip == offered.order.vip
                                && Medium::of(waiting.spec.channel) == Medium::of(offered.spec.channel)
                            {
                                let reason = router.exclusion(a, waiting, now);
                                prop_assert!(
                                    reason.is_some_and(|r| r != "no spare capacity"),
                                    "conversation {} was offered to {agent} before the earlier {}",
                                    conversation, waiting.spec.conversation_id
                                );
                            }
                        }
                    }
                    Effect::Assigned { offer, .. } | Effect::OfferWithdrawn { offer, .. } => {
                        open_offers.retain(|o| o != offer);
                    }
                    Effect::PresenceChanged { .. } => {}
                }
            }
            open_offers.retain(|o| router.offers.contains_key(o));
            if let Err(problem) = router.check_invariants(now) {
                prop_assert!(false, "{problem}");
            }
        }
    }
}

/// The best total over every assignment that assigns as many rows as possible, by brute force.
fn best_total(edges: &[Vec<(usize, i64)>], columns: usize) -> (usize, i64) {
    fn go(row: usize, edges: &[Vec<(usize, i64)>], used: &mut Vec<bool>) -> (usize, i64) {
        if row == edges.len() {
            return (0, 0);
        }
        let mut best = go(row + 1, edges, used);
        for &(column, weight) in &edges[row] {
            if !used[column] {
                used[column] = true;
                let (n, total) = go(row + 1, edges, used);
                used[column] = false;
                best = best.max((n + 1, total + weight));
            }
        }
        best
    }
    go(0, edges, &mut vec![false; columns])
}

proptest! {
    /// When every row can be assigned (as `choose_servable` guarantees), the sparse Hungarian
    /// method assigns them all, to distinct columns over existing edges, with the best total.
    #[test]
    fn sparse_assignment_is_optimal(
        rows in 1usize..7,
        extra in 0usize..4,
        raw in prop::collection::vec(prop::collection::vec((0usize..10, -50i64..5000), 0..5), 7),
    ) {
        let columns = rows + extra;
        // A perfect matching exists: row r may always take column r.
        let edges: Vec<Vec<(usize, i64)>> = (0..rows)
            .map(|r| {
                let mut row: Vec<(usize, i64)> = raw[r]
                    .iter()
                    .map(|(c, w)| (c % columns, *w))
                    .collect();
                row.push((r, raw[r].first().map_or(0, |e| e.1 / 2)));
                row
            })
            .collect();
        let mut sparse = Edges::with_rows(edges.len());
        for row in &edges {
            sparse.push_row(row.iter().copied());
        }
        let assignment = max_weight_assignment(&sparse, columns);
        let mut used = vec![false; columns];
        let mut total = 0;
        for (r, column) in assignment.iter().enumerate() {
            let column = column.expect("every row is assigned");
            prop_assert!(!used[column], "column {column} twice");
            used[column] = true;
            total += edges[r]
                .iter()
                .filter(|(c, _)| *c == column)
                .map(|(_, w)| *w)
                .max()
                .expect("an existing edge");
        }
        prop_assert_eq!((rows, total), best_total(&edges, columns));
    }
}

#[test]
fn a_rounds_ranking_scores_are_the_full_scores() {
    let mut router = Router::new(Policy::default());
    let mut part_timer = agent(2, &[("billing", 2), ("sales", 4)], 3);
    part_timer.mode = Mode::PartTime {
        delay_ms: 0,
        daily_cap: 9,
    };
    part_timer.location = Some("shanghai".into());
    let mut english = agent(3, &[("billing", 5)], 1);
    english.languages = vec!["en".into()];
    for profile in [agent(1, &[("billing", 3)], 5), part_timer, english] {
        online(&mut router, profile, 0);
    }
    router.handle(
        Event::ShiftChanged {
            agent: 3,
            off_shift: true,
            quiet: false,
        },
        0,
    );
    // Some history, so idle time and fairness differ between them.
    let mut first = task(1, 0);
    first.wanted_skills = vec!["sales".into()];
    for (id, offer, _) in offers(&router.handle(Event::TaskArrived(first), 60_000)) {
        router.handle(Event::OfferAccepted { offer }, 61_000);
        let _ = id;
    }
    let mut spec = task(5, 100_000);
    spec.required_skills.insert("billing".into(), 1);
    spec.wanted_skills = vec!["sales".into(), "refund".into()];
    spec.preferred_language = Some("zh".into());
    spec.previous_agents = vec![(1, 0.7)];
    spec.customer_location = Some("shanghai".into());
    spec.escalated = true;
    router.enqueue(spec, HashSet::new());
    let now = 200_000;
    let heads: Vec<OrderKey> = vec![router.tasks[&5].order];
    let pool: Vec<EmployeeId> = router.free.iter().copied().collect();
    let round = router.round(&heads, &pool, now);
    let task = &router.tasks[&5];
    assert_eq!(round.pool.len(), 3);
    let mut ranked = Vec::new();
    let medium = Medium::of(task.spec.channel).index();
    round.rank(0, task, medium, &mut TermCache::default(), &mut ranked);
    assert_eq!(ranked.len(), 3);
    for (score, i) in ranked {
        let full = (router.score_value(round.pool[i as usize].1, task, now) * 1000.0) as i64;
        assert!((score - full).abs() <= 1, "{i}: {full} vs {score}");
    }
}
