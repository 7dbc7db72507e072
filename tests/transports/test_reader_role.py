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
        assert role.take()
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
    with lock:
        assert role.take()
        assert not role.take()
        role.enlist(first)
        role.enlist(second)
        role.release()
        assert not role.held
        assert (first.tokens.qsize(), second.tokens.qsize()) == (1, 0)
        assert role.take()
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
        assert role.take()
        role.release()  # nobody left to wake
        assert (a.tokens.qsize(), b.tokens.qsize()) == (1, 0)


def test_follow_sleeps_without_the_lock_until_its_timeout_then_leaves_the_list() -> None:
    lock = threading.Lock()
    role = ReaderRole(lock)
    waiter = role.waiter()
    with lock:
        role.follow(waiter, 0.01)
        assert lock.locked()
        assert role.take()
        role.release()  # the waiter is no longer a follower: nothing to wake
    assert waiter.tokens.qsize() == 0


def test_holding_releases_the_role_however_the_block_ends() -> None:
    lock = threading.Lock()
    role = ReaderRole(lock)
    with lock:
        assert role.take()
    with pytest.raises(RuntimeError), role.holding():
        raise RuntimeError("boom")
    assert not role.held


def test_a_wake_says_whether_it_handed_the_role_over() -> None:
    """A thread woken by its own reply can leave at once; one woken to take the role (even if
    its reply came too) must pass it on, so a woken thread knows which wake it got."""
    lock = threading.Lock()
    role = ReaderRole(lock)
    answered, handed = other_thread_waiter(role), other_thread_waiter(role)
    with lock:
        assert role.take()
        role.enlist(answered)
        role.enlist(handed)
        role.resolve(answered, 1)
        role.release()  # the role goes to the first follower still waiting
    assert answered.done and not answered.handed
    assert handed.handed and handed.tokens.qsize() == 1
    with lock:
        role.enlist(handed)  # a new sleep: the old hand-off no longer counts
    assert not handed.handed
