package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
)

// The roster half of the suite: members and invites.

func testMembers(t *testing.T, s cohort.Store, _ *Clock) {
	ctx := context.Background()
	owner := must(s.EnsureUser(ctx, "teacher@example.com", cohort.RoleInstructor))
	c := newClass(t, s, owner)
	if r := must(s.MemberRole(ctx, c.ID, "teacher@example.com")); r != cohort.MemberInstructor {
		t.Fatalf("owner's role in a new class = %q, want instructor", r)
	}
	if n := must(s.AddMembers(ctx, c.ID, []string{"a@example.com", "b@example.com"}, cohort.MemberParticipant, owner.Email)); n != 2 {
		t.Fatalf("AddMembers added %d, want 2", n)
	}
	if n := must(s.AddMembers(ctx, c.ID, []string{"a@example.com", "teacher@example.com"}, cohort.MemberParticipant, owner.Email)); n != 0 {
		t.Fatalf("adding present members added %d", n)
	}
	if r := must(s.MemberRole(ctx, c.ID, "teacher@example.com")); r != cohort.MemberInstructor {
		t.Fatal("adding an instructor as participant demoted them")
	}
	must(s.AddMembers(ctx, c.ID, []string{"b@example.com"}, cohort.MemberInstructor, owner.Email))
	if r := must(s.MemberRole(ctx, c.ID, "B@example.com")); r != cohort.MemberInstructor {
		t.Fatalf("co-instructor role = %q", r)
	}
	if r := must(s.MemberRole(ctx, c.ID, "stranger@example.com")); r != "" {
		t.Fatalf("stranger's role = %q", r)
	}
	if list := must(s.ListMembers(ctx, c.ID)); len(list) != 3 {
		t.Fatalf("ListMembers = %d, want 3", len(list))
	}
	other := newClass(t, s, owner)
	if mine := must(s.ListClassesFor(ctx, "a@example.com")); len(mine) != 1 || mine[0].ID != c.ID {
		t.Fatalf("ListClassesFor = %v, want only %s (not %s)", mine, c.ID, other.ID)
	}
	if err := s.RemoveMember(ctx, c.ID, "a@example.com"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.RemoveMember(ctx, c.ID, "a@example.com"), cohort.ENOTFOUND)
	_, err := s.AddMembers(ctx, "cls_missing", []string{"a@example.com"}, cohort.MemberParticipant, owner.Email)
	wantCode(t, err, cohort.ENOTFOUND)
}

func testInvites(t *testing.T, s cohort.Store, clock *Clock) {
	ctx := context.Background()
	owner := must(s.EnsureUser(ctx, "teacher@example.com", cohort.RoleInstructor))
	c := newClass(t, s, owner)
	open := &cohort.Invite{ID: cohort.NewID("inv"), ClassID: c.ID, CreatedBy: owner.Email, ExpiresAt: clock.Now().Add(time.Hour)}
	school := &cohort.Invite{ID: cohort.NewID("inv"), ClassID: c.ID, CreatedBy: owner.Email, ExpiresAt: clock.Now().Add(3 * time.Hour), Domain: "uni.edu"}
	for code, inv := range map[string]*cohort.Invite{"open": open, "school": school} {
		if err := s.CreateInvite(ctx, inv, cohort.HashSecret(code)); err != nil {
			t.Fatal(err)
		}
	}
	ada := must(s.EnsureUser(ctx, "ada@uni.edu", cohort.RoleParticipant)) // a personal account with a uni address
	got := must(s.RedeemInvite(ctx, cohort.HashSecret("open"), ada))
	if got.ID != open.ID || got.Uses != 1 {
		t.Fatalf("RedeemInvite = %+v", got)
	}
	if r := must(s.MemberRole(ctx, c.ID, ada.Email)); r != cohort.MemberParticipant {
		t.Fatalf("role after invite = %q", r)
	}
	_, err := s.RedeemInvite(ctx, cohort.HashSecret("school"), ada)
	wantCode(t, err, cohort.EFORBIDDEN) // the email ends in uni.edu, but no hd claim vouches for it
	if err := s.SetUserHostedDomain(ctx, ada.ID, "uni.edu"); err != nil {
		t.Fatal(err)
	}
	ada = must(s.GetUser(ctx, ada.ID))
	must(s.RedeemInvite(ctx, cohort.HashSecret("school"), ada))
	_, err = s.RedeemInvite(ctx, cohort.HashSecret("nope"), ada)
	wantCode(t, err, cohort.EFORBIDDEN)
	if err := s.RevokeInvite(ctx, c.ID, school.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.RedeemInvite(ctx, cohort.HashSecret("school"), ada)
	wantCode(t, err, cohort.EFORBIDDEN)
	clock.Advance(2 * time.Hour)
	_, err = s.RedeemInvite(ctx, cohort.HashSecret("open"), ada)
	wantCode(t, err, cohort.EFORBIDDEN)
	list := must(s.ListInvites(ctx, c.ID))
	if len(list) != 2 || !slices.ContainsFunc(list, func(i *cohort.Invite) bool { return i.ID == school.ID && i.RevokedAt != nil }) {
		t.Fatalf("ListInvites = %+v, want both, %s revoked", list, school.ID)
	}
	wantCode(t, s.RevokeInvite(ctx, "cls_other", open.ID), cohort.ENOTFOUND)
}
