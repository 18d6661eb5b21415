#!/usr/bin/env python3
"""Which DB wrote which pages in one LMDB commit (0.9 format, 64-bit,
4 KiB meta pages; no MDB_DUPSORT sub-trees):

    lmdb_pages.py BEFORE AFTER

BEFORE and AFTER are copies of a data.mdb around one commit (ticket_pages
--snapshot makes them). Copy-on-write gives every page a commit dirtied a
new number, so the pages of AFTER's trees that BEFORE's trees do not have
are the pages that commit wrote, listed per DB, most first."""
import struct
import sys

P_BRANCH, P_LEAF, P_OVERFLOW, P_LEAF2 = 1, 2, 4, 0x20
F_BIGDATA, F_SUBDATA = 1, 2
INVALID = (1 << 64) - 1


def load(path):
    """The file, the newer meta page's number and the page size."""
    with open(path, 'rb') as f:
        data = f.read()
    metas = []
    for pg in (0, 1):
        off = pg * 4096 + 16  # MDB_meta, after the page header
        psize, = struct.unpack_from('<I', data, off + 24)  # dbs[0].md_pad
        txnid, = struct.unpack_from('<Q', data, off + 128)
        metas.append((txnid, pg, psize))
    _, pg, psize = max(metas)
    return data, pg, psize


def db_root(data, off):
    """md_root of the MDB_db at off."""
    return struct.unpack_from('<Q', data, off + 40)[0]


def walk(data, psize, root, named=None):
    """Pages of the tree at root (overflow pages included); in the main
    DB (named given) also each named DB's root, by name."""
    pages = set()
    if root == INVALID:
        return pages
    stack = [root]
    while stack:
        pg = stack.pop()
        pages.add(pg)
        base = pg * psize
        flags, lower = struct.unpack_from('<HH', data, base + 10)
        if flags & P_LEAF2:
            continue
        n = (lower - 16) >> 1
        for i in range(n):
            ptr, = struct.unpack_from('<H', data, base + 16 + 2 * i)
            node = base + ptr
            lo, hi, nflags, ksize = struct.unpack_from('<HHHH', data, node)
            if flags & P_BRANCH:
                stack.append(lo | (hi << 16) | (nflags << 32))
            elif flags & P_LEAF:
                dp = node + 8 + ksize
                if nflags & F_BIGDATA:
                    opg, = struct.unpack_from('<Q', data, dp)
                    cnt, = struct.unpack_from('<I', data, opg * psize + 12)
                    pages.update(range(opg, opg + cnt))
                elif nflags & F_SUBDATA and named is not None:
                    name = data[node + 8:node + 8 + ksize].decode()
                    named[name] = db_root(data, dp)
    return pages


def trees(path):
    """Page numbers of each DB's tree, by name."""
    data, pg, psize = load(path)
    off = pg * 4096 + 16
    free_root = db_root(data, off + 24)
    main_root = db_root(data, off + 72)
    named = {}
    out = {'(main)': walk(data, psize, main_root, named),
           '(free)': walk(data, psize, free_root)}
    for name, root in named.items():
        out[name] = walk(data, psize, root)
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    before, after = trees(sys.argv[1]), trees(sys.argv[2])
    new = {n: len(after[n] - before.get(n, set())) for n in after}
    for name in sorted(new, key=lambda n: -new[n]):
        if new[name]:
            print('%-16s %4d new pages (of %d)'
                  % (name, new[name], len(after[name])))
    print('%-16s %4d' % ('total', sum(new.values())))


if __name__ == '__main__':
    main()
