"""Alternative injection targets (seed §2, Tip 5; clinical-facts B8, B10, B12, section E).

* ``injection.si_joint`` — lumbar only: ``si_provocation_positive >= si_provocation_min``
  (3; Laslett). The SI joint mimics lumbar facet pain; never for cervical episodes (no SI joint
  question is asked for them either).
* ``injection.epidural_steroid`` — ``radicular_pain`` true (leg pain for lumbar, arm pain for
  cervical): the epidural injection targets the radicular component that facet injections do
  not reach. While radicular pain is present, facet-directed blocks and RFA are deferred (the
  rationale says so when a block/RFA would otherwise be next).
* ``injection.trigger_point`` — ``trigger_points`` true: an adjunct to rehabilitation, not a
  replacement for the diagnostic work-up.

Unknown trigger fields are listed in missing_data. Elective: not run with red flags.
"""

from __future__ import annotations

import carepath_pathway.domain.evidence as refs
from carepath_contracts.episode import Episode
from carepath_contracts.steps import EPIDURAL_STEROID, SI_JOINT_INJECTION, TRIGGER_POINT_INJECTION
from carepath_pathway.domain.context import Context, Finding, missing, rec
from carepath_pathway.domain.profiles import Profile


def injections(ep: Episode, profile: Profile, ctx: Context) -> list[Finding]:
    out: list[Finding] = []
    completed = ctx.completed

    if ep.region == "lumbar":
        si = ep.si_provocation_positive
        if si is None:
            out.append(missing(
                "si_provocation_positive",
                "not recorded: the sacroiliac joint mimics lumbar facet pain; "
                f">= {profile.si_provocation_min} positive provocation tests call for an SI "
                "joint injection (§2, Tip 5)",
            ))
        elif si >= profile.si_provocation_min and SI_JOINT_INJECTION not in completed:
            out.append(rec(
                SI_JOINT_INJECTION,
                f"{si} sacroiliac provocation tests are positive (threshold "
                f"{profile.si_provocation_min}): the SI joint can mimic lumbar facet pain. An SI "
                "joint injection (local anesthetic + corticosteroid) is diagnostic and "
                "therapeutic; success points to physical therapy or, in some cases, SI fusion.",
                [refs.SEED_INJECTION_TARGETS, refs.TIP[5], refs.G_SI_PROVOCATION, refs.PROFILE_E],
                {"si_provocation_positive": profile.si_provocation_min},
                {"si_provocation_positive": si, "region": ep.region},
            ))

    if ep.radicular_pain is None:
        out.append(missing(
            "radicular_pain",
            "not recorded: radicular pain calls for MRI and an epidural steroid injection, and "
            "argues against facet-directed blocks and RFA",
        ))
    elif ep.radicular_pain and EPIDURAL_STEROID not in completed:
        side = "arm" if ep.region == "cervical" else "leg"
        rationale = (
            f"Radicular ({side}) pain suggests nerve root involvement that facet injections do "
            "not address: an epidural steroid injection reduces inflammation around the nerve "
            "roots (§2, Tip 5)."
        )
        if ctx.mbb.status in ("positive", "none", "unrecorded", "needs_second") or (
            ctx.rfa.status == "worn_off"
        ):
            rationale += (
                " Facet-directed blocks and RFA are deferred while the radicular pain is "
                "treated (radicular symptoms predict a negative facet block; RFA does not "
                "treat radicular pain)."
            )
        out.append(rec(
            EPIDURAL_STEROID, rationale,
            [refs.SEED_INJECTION_TARGETS, refs.TIP[5], refs.G_ESI, refs.G_CONSENSUS_TABLE12],
            facts={"radicular_pain": True, "region": ep.region},
        ))

    if ep.trigger_points is None:
        out.append(missing(
            "trigger_points",
            "not recorded: paraspinal trigger points call for trigger point injections (§2)",
        ))
    elif ep.trigger_points and TRIGGER_POINT_INJECTION not in completed:
        out.append(rec(
            TRIGGER_POINT_INJECTION,
            "Paraspinal myofascial trigger points are present: trigger point injections of "
            "local anesthetic relieve muscle spasm that can mask or worsen facet pain (§2); an "
            "adjunct to rehabilitation, not a replacement for the diagnostic work-up.",
            [refs.SEED_INJECTION_TARGETS, refs.G_TRIGGER_POINTS],
            facts={"trigger_points": True},
        ))
    return out
