"""The blocking client's reader role on its own: who is woken, and how often."""

from __future__ import annotations

import threading

import pytest

from ndb_transports._reader_role import ReaderRole, Waiter


def other_thread_waiter(role: ReaderRole) -> Waiter:
    """A waiter made in another thread (so with that thread's own wake-up queue)."""
    made: list[Waiter] = []
    thread = threading.Thread(target=lambda: made.append(role.waiter()))
    thread.start()
    thread.join()
    return made[0]


def test_a_reply_wakes_only_its_own_sleeping_thread_and_only_once() -> None:
    lock = threading.Lock()
    role = ReaderRole(lock)
    mine, other = other_thread_waiter(role), other_thread_waiter(role)
    with lock:
        assert role.take(role.waiter())
        role.enlist(mine)
        role.enlist(other)
        role.resolve(mine, 42)
        role.resolve(mine, 43)  # a second wake for the same waiter is not delivered
    assert mine.done and mine.value == 43
    assert mine.tokens.qsize() == 1
    assert other.tokens.qsize() == 0 and not other.done


def test_a_thread_not_asleep_gets_no_wake() -> None:
    lock = threading.Lock()
    role = ReaderRole(lock)
    leader = role.waiter()
    error = ValueError("x")
    with lock:
        role.reject(leader, error)
    assert leader.done and leader.error is error
    assert leader.tokens.qsize() == 0


def test_releasing_the_role_wakes_the_first_follower_still_waiting() -> None:
    lock = threading.Lock()
    role = ReaderRole(lock)
    first, second = other_thread_waiter(role), other_thread_waiter(role)
    me = role.waiter()
    with lock:
        assert role.take(me)
        assert not role.take(first)
        role.enlist(first)
        role.enlist(second)
        role.release()
        assert not role.held
        assert (first.tokens.qsize(), second.tokens.qsize()) == (1, 0)
        assert role.take(first)
        role.release()  # the first was woken (and left the list): the second is next
        assert second.tokens.qsize() == 1


def test_wake_all_and_withdraw() -> None:
    lock = threading.Lock()
    role = ReaderRole(lock)
    a, b = other_thread_waiter(role), other_thread_waiter(role)
    with lock:
        role.enlist(a)
        role.enlist(b)
        role.withdraw(b)
        role.wake_all()
        assert (a.tokens.qsize(), b.tokens.qsize()) == (1, 0)
        assert role.take(a)
        role.release()  # nobody left to wake
        assert (a.tokens.qsize(), b.tokens.qsize()) == (1, 0)


def test_leave_gives_up_whatever_part_the_thread_had() -> None:
    """A thread leaving by an exception may hold the role, have just been handed it, or be
    asleep as a follower: in each case the role goes on to the next follower still waiting."""
    lock = threading.Lock()
    role = ReaderRole(lock)
    mine, first, second = role.waiter(), other_thread_waiter(role), other_thread_waiter(role)
    with lock:
        assert role.take(mine)
        role.enlist(first)
        role.enlist(second)
        role.leave((mine,))  # holding it: released, and handed to the first follower
        assert not role.held and first.handed and first.tokens.qsize() == 1
        role.leave((first,))  # handed it, never took it: on to the second
        assert second.handed and second.tokens.qsize() == 1
        assert role.take(second)
        role.enlist(first)
        role.leave((first,))  # asleep: no longer a follower; the holder keeps the role
        assert role.holder is second
        role.release()
        assert first.tokens.qsize() == 1  # nothing more: it was not woken again


def test_taking_part_leaves_however_the_block_ends() -> None:
    lock = threading.Lock()
    role = ReaderRole(lock)
    waiter = role.waiter()

    def lead_then_fail() -> None:
        with role.taking_part(waiter):
            with lock:
                assert role.take(waiter)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        lead_then_fail()
    assert not role.held
    with role.taking_part(waiter):
        pass  # never took it: nothing to give up
    assert not role.held


def test_a_wake_says_whether_it_handed_the_role_over() -> None:
    """A thread woken by its own reply can leave at once; one woken to take the role (even if
    its reply came too) must pass it on, so a woken thread knows which wake it got."""
    lock = threading.Lock()
    role = ReaderRole(lock)
    answered, handed = other_thread_waiter(role), other_thread_waiter(role)
    with lock:
        assert role.take(role.waiter())
        role.enlist(answered)
        role.enlist(handed)
        role.resolve(answered, 1)
        role.release()  # the role goes to the first follower still waiting
    assert answered.done and not answered.handed
    assert handed.handed and handed.tokens.qsize() == 1
    with lock:
        role.enlist(handed)  # a new sleep: the old hand-off no longer counts
    assert not handed.handed
