using System.Collections.Concurrent;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace WeakSeg.Refinement;

/// <summary>
/// Permutohedral lattice (Adams, Baek and Davis, "Fast High-Dimensional Filtering Using the Permutohedral Lattice",
/// Eurographics 2010): approximates the Gaussian filter <c>out_i = Σ_j exp(-½‖f_i − f_j‖²) · in_j</c> (j = i included)
/// over N points with d-dimensional features in O(N·d²) work, by splatting values onto the vertices of the simplices
/// that enclose each elevated feature, blurring along the d+1 lattice axes with a [½ 1 ½] kernel, and slicing back
/// with the same barycentric weights. Features are given already divided by their standard deviations.
/// </summary>
/// <remarks>
/// Built once per feature set; <see cref="Filter"/> can then be called any number of times. The splat scatters the
/// points in a fixed number of contiguous blocks, each into its own vertex buffer, which are then summed in a fixed
/// order: reads of the values stay sequential, no atomics are needed, and the result does not depend on scheduling:
/// runs with the same thread count are bit-identical; other thread counts differ only by float summation order.
/// Blur and slice run in parallel over vertices and points.
/// A lattice is immutable; a <see cref="LatticeWorkspace"/> must not be shared by concurrent calls.
/// </remarks>
public sealed class PermutohedralLattice
{
    /// <summary>Number of filtered points N.</summary>
    public int PointCount { get; }
    /// <summary>Feature dimension d.</summary>
    public int Dimensions { get; }
    /// <summary>Number of lattice vertices touched by the points (M).</summary>
    public int VertexCount { get; }
    /// <summary>Scale applied at slicing so the filter approximates the unit-σ Gaussian sum (1 / (1 + 2^-d)).</summary>
    public float SliceScale { get; }

    internal readonly int MaxThreads;
    // Per point i and simplex corner r (index i*(d+1)+r): the vertex it touches and its barycentric weight.
    internal readonly int[] PointVertex;
    internal readonly float[] PointWeight;
    // Blur neighbours: for axis a and vertex v, [(a*M + v)*2] is the vertex one step back, +1 the one forward;
    // a missing neighbour is the always-zero row M.
    internal readonly int[] BlurNeighbour;

    PermutohedralLattice(int pointCount, int dimensions, int vertexCount, int maxThreads, int[] pointVertex, float[] pointWeight, int[] blurNeighbour)
    {
        PointCount = pointCount;
        Dimensions = dimensions;
        VertexCount = vertexCount;
        MaxThreads = maxThreads;
        PointVertex = pointVertex;
        PointWeight = pointWeight;
        BlurNeighbour = blurNeighbour;
        SliceScale = 1f / (1f + MathF.Pow(2f, -dimensions));
    }

    /// <summary>Largest lattice coordinate magnitude supported (features beyond it are rejected, not wrapped).</summary>
    const float MaxElevatedMagnitude = 1e8f;

    /// <summary>
    /// Builds the lattice for <paramref name="pointCount"/> points whose features are stored point-major in
    /// <paramref name="features"/> ([N, d], already divided by the standard deviations).
    /// </summary>
    /// <param name="maxThreads">parallelism for build and filtering; null = all processors</param>
    public static PermutohedralLattice Build(ReadOnlySpan<float> features, int pointCount, int dimensions, int? maxThreads = null)
    {
        if (dimensions < 1 || dimensions > 16)
            throw new WeakSegException($"permutohedral lattice: feature dimension must be 1..16, got {dimensions}");
        if (pointCount < 1)
            throw new WeakSegException($"permutohedral lattice: needs at least one point, got {pointCount}");
        if (features.Length != (long)pointCount * dimensions)
            throw new WeakSegException($"permutohedral lattice: {features.Length} feature values for {pointCount} points × {dimensions} dimensions (expected {(long)pointCount * dimensions})");
        for (int i = 0; i < features.Length; i++)
            if (!float.IsFinite(features[i]))
                throw new WeakSegException($"permutohedral lattice: feature {i % dimensions} of point {i / dimensions} is {features[i]}");

        int d = dimensions, corners = d + 1, n = pointCount;
        if ((long)n * corners * d > int.MaxValue)
            throw new WeakSegException($"permutohedral lattice: {n} points of dimension {d} are too many for one lattice");
        int threads = maxThreads is > 0 ? maxThreads.Value : Environment.ProcessorCount;
        var featureArray = features.ToArray();

        // 1. Enclosing simplex of every point (parallel): corner keys (first d lattice coordinates), their hashes, the
        //    barycentric weights, and whether a corner is the same vertex as the previous point's (common in flat regions).
        var keys = GC.AllocateUninitializedArray<int>(n * corners * d);
        var pointWeight = new float[n * corners];
        var hashes = GC.AllocateUninitializedArray<uint>(n * corners);
        var repeat = new bool[n * corners];
        ForRanges(n, 2048, threads, (start, end) => ComputeSimplices(featureArray, d, start, end, keys, pointWeight, hashes, repeat));

        // 2. Distinct vertices, numbered in order of first appearance (sequential insert into an open-addressing table
        //    that starts at ~N/8 vertices and doubles as needed).
        var table = new LatticeKeyTable(d, Math.Max(1024, n / 8));
        var pointVertex = new int[n * corners];
        for (int e = 0; e < pointVertex.Length; e++)
            pointVertex[e] = repeat[e] ? pointVertex[e - corners] : table.FindOrAdd(keys.AsSpan(e * d, d), hashes[e]);
        int m = table.Count;
        table.Freeze();

        // 3. Blur neighbours along each of the d+1 lattice axes (parallel, read-only lookups).
        var neighbours = new int[(long)corners * m * 2 > int.MaxValue ? throw new WeakSegException("permutohedral lattice: too many vertices") : corners * m * 2];
        ForRanges(m, 4096, threads, (start, end) =>
        {
            Span<int> probe = stackalloc int[d];
            for (int v = start; v < end; v++)
            {
                var key = table.Key(v);
                for (int axis = 0; axis <= d; axis++)
                {
                    // One step along axis a is +(d+1)·e_a − 1 in every coordinate (only the first d are stored).
                    for (int k = 0; k < d; k++) probe[k] = key[k] + (k == axis ? d : -1);
                    int back = table.Find(probe);
                    for (int k = 0; k < d; k++) probe[k] = key[k] - (k == axis ? d : -1);
                    int forward = table.Find(probe);
                    int at = (axis * m + v) * 2;
                    neighbours[at] = back < 0 ? m : back;
                    neighbours[at + 1] = forward < 0 ? m : forward;
                }
            }
        });

        return new PermutohedralLattice(n, d, m, threads, pointVertex, pointWeight, neighbours);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ComputeSimplices(float[] features, int d, int start, int end, int[] keys, float[] weights, uint[] hashes, bool[] repeat)
    {
        int corners = d + 1;
        Span<float> scale = stackalloc float[d];
        Span<float> elevated = stackalloc float[corners];
        Span<int> nearest = stackalloc int[corners];
        Span<int> rank = stackalloc int[corners];
        Span<float> barycentric = stackalloc float[d + 2];
        // Scaling of Adams et al. (Sec. 3.1): the diagonal of the elevation matrix times (d+1)·√(2/3), the lattice
        // spacing that makes splat + [½ 1 ½] blur + slice approximate a unit standard deviation Gaussian.
        float invStd = (d + 1) * MathF.Sqrt(2f / 3f);
        for (int k = 0; k < d; k++) scale[k] = invStd / MathF.Sqrt((k + 1) * (k + 2));

        for (int p = start; p < end; p++)
        {
            var f = features.AsSpan(p * d, d);
            // Elevate onto the hyperplane Σx = 0 of R^{d+1}: x_i = Σ_{k≥i} c_k − i·c_{i−1}, with c_k = f_k·scale_k.
            float tail = 0f;
            for (int i = d; i >= 1; i--)
            {
                float c = f[i - 1] * scale[i - 1];
                elevated[i] = tail - i * c;
                tail += c;
            }
            elevated[0] = tail;

            // Nearest point of the remainder-0 sublattice (coordinates multiple of d+1), coordinate by coordinate.
            int excess = 0;
            for (int i = 0; i <= d; i++)
            {
                float x = elevated[i];
                if (MathF.Abs(x) > MaxElevatedMagnitude)
                    throw new WeakSegException($"permutohedral lattice: feature of point {p} is too large ({x}); use larger standard deviations");
                int q = (int)MathF.Round(x / corners, MidpointRounding.AwayFromZero);
                nearest[i] = q * corners;
                excess += q;
            }
            // Rank of each coordinate's residual (0 = largest), ties broken by index.
            for (int i = 0; i <= d; i++) rank[i] = 0;
            for (int i = 0; i < d; i++)
                for (int j = i + 1; j <= d; j++)
                {
                    if (elevated[i] - nearest[i] < elevated[j] - nearest[j]) rank[i]++;
                    else rank[j]++;
                }
            // The rounded point may be off the hyperplane by `excess` steps; move the extreme coordinates back.
            for (int i = 0; i <= d; i++)
            {
                rank[i] += excess;
                if (rank[i] < 0) { rank[i] += corners; nearest[i] += corners; }
                else if (rank[i] > d) { rank[i] -= corners; nearest[i] -= corners; }
            }
            // Barycentric coordinates of the point in its simplex.
            barycentric.Clear();
            for (int i = 0; i <= d; i++)
            {
                float t = (elevated[i] - nearest[i]) / corners;
                barycentric[d - rank[i]] += t;
                barycentric[d - rank[i] + 1] -= t;
            }
            barycentric[0] += 1f + barycentric[d + 1];

            // Corner r of the simplex: nearest + canonical offset (r where rank ≤ d − r, else r − (d+1)).
            for (int r = 0; r <= d; r++)
            {
                int e = p * corners + r;
                var key = keys.AsSpan(e * d, d);
                for (int i = 0; i < d; i++)
                    key[i] = nearest[i] + (rank[i] <= d - r ? r : r - corners);
                uint h = LatticeKeyTable.Hash(key);
                hashes[e] = h;
                weights[e] = barycentric[r];
                repeat[e] = p > start && hashes[e - corners] == h && keys.AsSpan((e - corners) * d, d).SequenceEqual(key);
            }
        }
    }

    /// <summary>Reusable buffers for filtering <paramref name="channels"/> values per point.</summary>
    public LatticeWorkspace CreateWorkspace(int channels) => new(VertexCount, channels, MaxThreads);

    /// <summary>
    /// Gaussian filter of <paramref name="input"/> ([N, channels], point-major) into <paramref name="output"/> (same shape):
    /// output_i ≈ Σ_j exp(-½‖f_i − f_j‖²) · input_j. Allocates a workspace; use the overload with one for repeated calls.
    /// </summary>
    public void Filter(ReadOnlySpan<float> input, Span<float> output, int channels)
        => Filter(input, output, channels, CreateWorkspace(channels));

    /// <inheritdoc cref="Filter(ReadOnlySpan{float}, Span{float}, int)"/>
    public void Filter(ReadOnlySpan<float> input, Span<float> output, int channels, LatticeWorkspace workspace)
    {
        if (channels < 1) throw new WeakSegException($"permutohedral lattice: channels must be ≥ 1, got {channels}");
        if (input.Length != (long)PointCount * channels || output.Length != input.Length)
            throw new WeakSegException($"permutohedral lattice: input has {input.Length} and output {output.Length} values; expected {PointCount} points × {channels} channels");
        if (workspace.Channels != channels || workspace.VertexCapacity < VertexCount)
            throw new WeakSegException("permutohedral lattice: workspace was made for another lattice or channel count");
        int stride = workspace.Stride;
        // Pad rows to the SIMD stride, filter, unpad.
        var padded = workspace.PointBuffer(PointCount);
        for (int i = 0; i < PointCount; i++)
        {
            input.Slice(i * channels, channels).CopyTo(padded.AsSpan(i * stride, channels));
            padded.AsSpan(i * stride + channels, stride - channels).Clear();
        }
        var blurred = SplatAndBlur(padded, PointWeight, workspace);
        var filtered = workspace.PointOutputBuffer(PointCount);
        var scale = new Vector<float>(SliceScale);
        ForRanges(PointCount, 2048, MaxThreads, (start, end) =>
        {
            int lanes = stride / Vector<float>.Count;
            var target = MemoryMarshal.Cast<float, Vector<float>>(filtered.AsSpan());
            for (int i = start; i < end; i++)
            {
                var row = target.Slice(i * lanes, lanes);
                row.Clear();
                SliceAdd(blurred, PointWeight, i, row);
                for (int l = 0; l < lanes; l++) row[l] *= scale;
            }
        });
        for (int i = 0; i < PointCount; i++)
            filtered.AsSpan(i * stride, channels).CopyTo(output.Slice(i * channels, channels));
    }

    /// <summary>
    /// Splats <paramref name="pointValues"/> ([N, stride]) with per-(point, corner) <paramref name="weights"/> (the
    /// barycentric weights, possibly pre-multiplied by a per-point factor), then blurs along every axis.
    /// Returns the buffer holding the blurred vertex values ([M+1, stride], row M zero).
    /// </summary>
    internal float[] SplatAndBlur(float[] pointValues, float[] weights, LatticeWorkspace workspace)
    {
        int stride = workspace.Stride, blocks = workspace.Blocks.Length, n = PointCount;
        if (pointValues.Length < n * stride || weights.Length != PointWeight.Length || workspace.VertexCapacity < VertexCount)
            throw new ArgumentException("splat buffers do not match the lattice");
        // Scatter: block b takes points [b·N/B, (b+1)·N/B) into its own buffer.
        var options = new ParallelOptions { MaxDegreeOfParallelism = MaxThreads };
        Parallel.For(0, blocks, options, b =>
        {
            var buffer = workspace.Blocks[b];
            buffer.AsSpan(0, (VertexCount + 1) * stride).Clear();
            ScatterRange(pointValues, weights, buffer, stride, (int)((long)n * b / blocks), (int)((long)n * (b + 1) / blocks));
        });
        // Sum the blocks into block 0, in block order.
        var total = workspace.Blocks[0];
        if (blocks > 1)
            ForRanges(VertexCount, 4096, MaxThreads, (start, end) =>
            {
                var sum = MemoryMarshal.Cast<float, Vector<float>>(total.AsSpan(start * stride, (end - start) * stride));
                for (int b = 1; b < blocks; b++)
                {
                    var part = MemoryMarshal.Cast<float, Vector<float>>(workspace.Blocks[b].AsSpan(start * stride, (end - start) * stride));
                    for (int l = 0; l < sum.Length; l++) sum[l] += part[l];
                }
            });
        // Blur, ping-ponging between block 0 and the spare buffer.
        var from = total;
        var to = workspace.Spare;
        to.AsSpan(VertexCount * stride, stride).Clear();
        int m = VertexCount;
        for (int axis = 0; axis <= Dimensions; axis++)
        {
            int axisOffset = axis * m * 2;
            var source = from;
            var target = to;
            ForRanges(m, 4096, MaxThreads, (start, end) => BlurRange(source, target, stride, axisOffset, start, end));
            (from, to) = (to, from);
        }
        return from;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void ScatterRange(float[] pointValues, float[] weights, float[] buffer, int stride, int start, int end)
    {
        int corners = Dimensions + 1, lanes = stride / Vector<float>.Count;
        ref var source = ref Unsafe.As<float, Vector<float>>(ref MemoryMarshal.GetArrayDataReference(pointValues));
        ref var vertices = ref Unsafe.As<float, Vector<float>>(ref MemoryMarshal.GetArrayDataReference(buffer));
        ref int vertexOf = ref MemoryMarshal.GetArrayDataReference(PointVertex);
        ref float weight = ref MemoryMarshal.GetArrayDataReference(weights);
        if (lanes == 3)
        {
            // The common case (9..24 labels with 8-wide vectors): values in registers, unrolled.
            for (int i = start; i < end; i++)
            {
                ref var row = ref Unsafe.Add(ref source, i * 3);
                var a = row;
                var b = Unsafe.Add(ref row, 1);
                var c = Unsafe.Add(ref row, 2);
                int e0 = i * corners;
                for (int r = 0; r < corners; r++)
                {
                    ref var vertex = ref Unsafe.Add(ref vertices, Unsafe.Add(ref vertexOf, e0 + r) * 3);
                    var w = new Vector<float>(Unsafe.Add(ref weight, e0 + r));
                    vertex += a * w;
                    Unsafe.Add(ref vertex, 1) += b * w;
                    Unsafe.Add(ref vertex, 2) += c * w;
                }
            }
            return;
        }
        for (int i = start; i < end; i++)
        {
            ref var row = ref Unsafe.Add(ref source, i * lanes);
            int e0 = i * corners;
            for (int r = 0; r < corners; r++)
            {
                ref var vertex = ref Unsafe.Add(ref vertices, Unsafe.Add(ref vertexOf, e0 + r) * lanes);
                var w = new Vector<float>(Unsafe.Add(ref weight, e0 + r));
                for (int l = 0; l < lanes; l++) Unsafe.Add(ref vertex, l) += Unsafe.Add(ref row, l) * w;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void BlurRange(float[] from, float[] to, int stride, int axisOffset, int start, int end)
    {
        int lanes = stride / Vector<float>.Count;
        ref var source = ref Unsafe.As<float, Vector<float>>(ref MemoryMarshal.GetArrayDataReference(from));
        ref var target = ref Unsafe.As<float, Vector<float>>(ref MemoryMarshal.GetArrayDataReference(to));
        ref int neighbour = ref MemoryMarshal.GetArrayDataReference(BlurNeighbour);
        var half = new Vector<float>(0.5f);
        for (int v = start; v < end; v++)
        {
            ref var back = ref Unsafe.Add(ref source, Unsafe.Add(ref neighbour, axisOffset + v * 2) * lanes);
            ref var forward = ref Unsafe.Add(ref source, Unsafe.Add(ref neighbour, axisOffset + v * 2 + 1) * lanes);
            ref var self = ref Unsafe.Add(ref source, v * lanes);
            ref var output = ref Unsafe.Add(ref target, v * lanes);
            for (int l = 0; l < lanes; l++)
                Unsafe.Add(ref output, l) = Unsafe.Add(ref self, l) + half * (Unsafe.Add(ref back, l) + Unsafe.Add(ref forward, l));
        }
    }

    /// <summary>Slice of one point: row += Σ_r weights_(i,r) · vertex_(i,r) (row has stride/width vectors).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void SliceAdd(float[] vertexValues, float[] weights, int point, Span<Vector<float>> row)
    {
        int corners = Dimensions + 1, lanes = row.Length, e0 = point * corners;
        ref var vertices = ref Unsafe.As<float, Vector<float>>(ref MemoryMarshal.GetArrayDataReference(vertexValues));
        ref int vertexOf = ref MemoryMarshal.GetArrayDataReference(PointVertex);
        ref float weight = ref MemoryMarshal.GetArrayDataReference(weights);
        ref var target = ref MemoryMarshal.GetReference(row);
        for (int r = 0; r < corners; r++)
        {
            ref var vertex = ref Unsafe.Add(ref vertices, Unsafe.Add(ref vertexOf, e0 + r) * lanes);
            var w = new Vector<float>(Unsafe.Add(ref weight, e0 + r));
            for (int l = 0; l < lanes; l++) Unsafe.Add(ref target, l) += Unsafe.Add(ref vertex, l) * w;
        }
    }

    /// <summary>Runs <paramref name="body"/>(start, end) over [0, count) in chunks, on up to <paramref name="threads"/> threads.</summary>
    internal static void ForRanges(int count, int chunk, int threads, Action<int, int> body)
    {
        if (count <= 0) return;
        if (threads <= 1 || count <= chunk)
        {
            body(0, count);
            return;
        }
        var options = new ParallelOptions { MaxDegreeOfParallelism = threads };
        Parallel.ForEach(Partitioner.Create(0, count, Math.Max(chunk, (count + threads * 8 - 1) / (threads * 8))), options,
                         range => body(range.Item1, range.Item2));
    }
}

/// <summary>
/// Buffers for filtering one lattice with a given channel count: one vertex buffer per splat block (block 0 also
/// receives the sum), a spare one for the blur, and padded point rows for <see cref="PermutohedralLattice.Filter"/>.
/// </summary>
public sealed class LatticeWorkspace
{
    /// <summary>Channels per point the workspace was made for.</summary>
    public int Channels { get; }
    /// <summary>Floats per row: channels rounded up to the SIMD width.</summary>
    public int Stride { get; }
    /// <summary>Largest vertex count the buffers hold.</summary>
    public int VertexCapacity { get; }

    internal float[][] Blocks { get; }
    internal float[] Spare { get; }
    float[]? _points, _pointOutput;

    /// <summary>Splat blocks: one per thread, fewer if the block buffers would pass ~128 MB.</summary>
    internal LatticeWorkspace(int vertexCapacity, int channels, int threads)
    {
        Channels = channels;
        Stride = RoundUpToVector(channels);
        VertexCapacity = vertexCapacity;
        long bufferBytes = (vertexCapacity + 1L) * Stride * sizeof(float);
        int blocks = (int)Math.Clamp((128L << 20) / bufferBytes, 1, Math.Max(1, threads));
        Blocks = new float[blocks][];
        for (int b = 0; b < blocks; b++) Blocks[b] = new float[(vertexCapacity + 1) * Stride];
        Spare = new float[(vertexCapacity + 1) * Stride];
    }

    internal static int RoundUpToVector(int channels)
    {
        int w = Vector<float>.Count;
        return (channels + w - 1) / w * w;
    }

    internal float[] PointBuffer(int points) => _points is { } p && p.Length >= points * Stride ? p : _points = new float[points * Stride];
    internal float[] PointOutputBuffer(int points) => _pointOutput is { } p && p.Length >= points * Stride ? p : _pointOutput = new float[points * Stride];
}

/// <summary>
/// Open-addressing hash table from lattice keys (d ints) to dense vertex indices 0..Count-1 in insertion order.
/// Starts small and doubles at half load, so it stays cache-sized for the typical M ≪ N(d+1).
/// </summary>
sealed class LatticeKeyTable
{
    readonly int _d;
    // Slot = hash << 32 | (vertex + 1); 0 = empty. Keeping the hash in the slot lets a probe reject a mismatch (or find
    // an empty slot) without touching the key arrays, which matters for the many failed blur-neighbour lookups.
    ulong[] _slots;
    uint _mask;
    int[] _keys;    // vertex-major, d ints each
    uint[] _hashes;
    public int Count { get; private set; }

    public LatticeKeyTable(int d, int expected)
    {
        _d = d;
        int capacity = 1024;
        while (capacity < expected * 2L && capacity < (1 << 30)) capacity <<= 1;
        _slots = new ulong[capacity];
        _mask = (uint)capacity - 1;
        _keys = new int[Math.Max(16, expected) * d];
        _hashes = new uint[Math.Max(16, expected)];
    }

    public ReadOnlySpan<int> Key(int vertex) => _keys.AsSpan(vertex * _d, _d);

    public static uint Hash(ReadOnlySpan<int> key)
    {
        // Murmur3-style: mix each coordinate in, then the 32-bit finaliser, so that keys differing by ±1 in one
        // coordinate land far apart (linear probing suffers badly from clustered hashes).
        uint h = 0x9747B28Cu;
        foreach (int k in key)
        {
            uint c = (uint)k * 0xCC9E2D51u;
            c = BitOperations.RotateLeft(c, 15) * 0x1B873593u;
            h = BitOperations.RotateLeft(h ^ c, 13) * 5 + 0xE6546B64u;
        }
        h ^= h >> 16;
        h *= 0x85EBCA6Bu;
        h ^= h >> 13;
        h *= 0xC2B2AE35u;
        h ^= h >> 16;
        return h;
    }

    ulong[]? _presence;
    int _presenceShift;

    /// <summary>
    /// Builds a one-bit-per-hash presence filter (~16 bits per vertex, small enough for the L2 cache) so that
    /// <see cref="Find"/> rejects most absent keys without touching the large slot array. Call after the last insert.
    /// </summary>
    public void Freeze()
    {
        int bits = 1 << 10;
        while (bits < Count * 16L && bits < (1 << 30)) bits <<= 1;
        _presence = new ulong[bits / 64];
        _presenceShift = 32 - BitOperations.Log2((uint)bits);
        for (int v = 0; v < Count; v++)
        {
            uint bit = _hashes[v] >> _presenceShift;
            _presence[bit >> 6] |= 1UL << (int)(bit & 63);
        }
    }

    public int Find(ReadOnlySpan<int> key)
    {
        uint h = Hash(key);
        if (_presence is { } presence)
        {
            uint bit = h >> _presenceShift;
            if ((presence[bit >> 6] & (1UL << (int)(bit & 63))) == 0) return -1;
        }
        for (uint s = h & _mask; ; s = (s + 1) & _mask)
        {
            ulong slot = _slots[s];
            if (slot == 0) return -1;
            if ((uint)(slot >> 32) != h) continue;
            int v = (int)(uint)slot - 1;
            if (_keys.AsSpan(v * _d, _d).SequenceEqual(key)) return v;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public int FindOrAdd(ReadOnlySpan<int> key, uint h)
    {
        for (uint s = h & _mask; ; s = (s + 1) & _mask)
        {
            ulong slot = _slots[s];
            if (slot == 0)
            {
                int v = Count++;
                if (v >= _hashes.Length)
                {
                    Array.Resize(ref _hashes, _hashes.Length * 2);
                    Array.Resize(ref _keys, _hashes.Length * _d);
                }
                key.CopyTo(_keys.AsSpan(v * _d, _d));
                _hashes[v] = h;
                _slots[s] = ((ulong)h << 32) | (uint)(v + 1);
                if (Count * 2L > _slots.Length) Grow();
                return v;
            }
            if ((uint)(slot >> 32) != h) continue;
            int u = (int)(uint)slot - 1;
            if (_keys.AsSpan(u * _d, _d).SequenceEqual(key)) return u;
        }
    }

    void Grow()
    {
        if (_slots.Length >= 1 << 30) throw new WeakSegException("permutohedral lattice: too many vertices");
        _slots = new ulong[_slots.Length * 2];
        _mask = (uint)_slots.Length - 1;
        for (int v = 0; v < Count; v++)
        {
            uint s = _hashes[v] & _mask;
            while (_slots[s] != 0) s = (s + 1) & _mask;
            _slots[s] = ((ulong)_hashes[v] << 32) | (uint)(v + 1);
        }
    }
}
