namespace WeakSeg.Data;

/// <summary>
/// Decodes and augments batches on background worker threads with a bounded prefetch window. Deterministic: the sample
/// order of epoch e is a permutation drawn from (seed, e) only, and every augmentation decision for sample i in epoch e
/// comes from an RNG seeded with (seed, e, i) only. Global step s is batch s % <see cref="BatchesPerEpoch"/> of epoch
/// s / <see cref="BatchesPerEpoch"/>, so <see cref="Stream"/>(s) resumes exactly.
/// Data-parallel training: with <c>ranks</c> = N &gt; 1, <see cref="BatchSize"/> is the global batch and this loader builds only
/// rank r's share of each global batch, its positions [r·B/N, (r+1)·B/N) — the same images with the same augmentation as one
/// process's batch, split over the ranks.
/// </summary>
public sealed class BatchLoader
{
    readonly IReadOnlyList<VocSample> _samples;
    readonly TrainTransform _transform;
    readonly object _orderGate = new();
    int _orderEpoch = -1;
    int[] _order = [];

    public int NumClasses { get; }
    /// <summary>Images of each global batch (over all ranks).</summary>
    public int BatchSize { get; }
    /// <summary>This loader's rank among <see cref="Ranks"/> (0 and 1 for one process).</summary>
    public int Rank { get; }
    public int Ranks { get; }
    /// <summary>Images this loader builds per step: <see cref="BatchSize"/> / <see cref="Ranks"/>.</summary>
    public int LocalBatchSize => BatchSize / Ranks;
    public long Seed { get; }
    public bool Shuffle { get; }
    public bool DropLast { get; }
    public int Workers { get; }
    public int Prefetch { get; }
    /// <summary>True when batches carry masks (loadMasks and every sample has a mask).</summary>
    public bool LoadsMasks { get; }
    /// <summary>Gives a sample's saliency map as bytes (0–254, the image's size), resampled with the crop into <see cref="ImageBatch.Saliency"/>.</summary>
    readonly Func<VocSample, RgbImage, LabelMap>? _saliency;
    public int BatchesPerEpoch { get; }
    public int SampleCount => _samples.Count;

    public BatchLoader(IReadOnlyList<VocSample> samples, int numClasses, TrainTransform transform, int batchSize, long seed,
        bool shuffle = true, bool dropLast = true, int workers = 2, int prefetch = 4, bool loadMasks = true, int rank = 0, int ranks = 1,
        Func<VocSample, RgbImage, LabelMap>? saliency = null)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(transform);
        if (samples.Count == 0) throw new WeakSegException("the loader has no samples (empty split)");
        if (batchSize < 1) throw new WeakSegException($"batch size must be ≥ 1 (got {batchSize})");
        if (numClasses < 1 || numClasses > 254) throw new WeakSegException($"number of classes must be in 1..254 (got {numClasses})");
        if (workers < 1) throw new WeakSegException($"workers must be ≥ 1 (got {workers})");
        if (prefetch < 1) throw new WeakSegException($"prefetch must be ≥ 1 (got {prefetch})");
        if (ranks < 1 || rank < 0 || rank >= ranks) throw new WeakSegException($"rank {rank} of {ranks} ranks is not a valid rank");
        if (batchSize % ranks != 0)
            throw new WeakSegException($"batch size {batchSize} is the global batch of {ranks} ranks and must be divisible by {ranks} (each rank loads an equal share)");
        if (ranks > 1 && !dropLast) throw new WeakSegException("a loader split over ranks drops the last partial batch (every rank needs an equal share)");
        var errors = transform.Validate();
        if (errors.Count > 0) throw new WeakSegException("invalid transform: " + string.Join("; ", errors));
        foreach (var s in samples)
            foreach (var c in s.Classes)
                if (c < 1 || c > numClasses) throw WeakSegException.ForFile(s.ImagePath, $"image-level class {c} is outside 1..{numClasses}");
        _samples = samples; _transform = transform;
        NumClasses = numClasses; BatchSize = batchSize; Rank = rank; Ranks = ranks; Seed = seed; Shuffle = shuffle; DropLast = dropLast;
        Workers = workers; Prefetch = prefetch;
        LoadsMasks = loadMasks && samples.All(s => s.MaskPath != null);
        _saliency = saliency;
        BatchesPerEpoch = dropLast ? samples.Count / batchSize : (samples.Count + batchSize - 1) / batchSize;
        if (BatchesPerEpoch == 0)
            throw new WeakSegException($"the split has {samples.Count} images, fewer than one batch of {batchSize} (use a smaller batch size)");
    }

    /// <summary>The batches of one epoch, in order.</summary>
    public IEnumerable<ImageBatch> Epoch(int epoch)
    {
        if (epoch < 0) throw new ArgumentOutOfRangeException(nameof(epoch));
        return Run((long)epoch * BatchesPerEpoch, (long)(epoch + 1) * BatchesPerEpoch);
    }

    /// <summary>An endless sequence of batches starting at global step <paramref name="startStep"/>, crossing epochs.</summary>
    public IEnumerable<ImageBatch> Stream(long startStep = 0)
    {
        if (startStep < 0) throw new ArgumentOutOfRangeException(nameof(startStep));
        return Run(startStep, long.MaxValue);
    }

    IEnumerable<ImageBatch> Run(long first, long end)
    {
        using var pipeline = new Pipeline(this, first, end);
        for (long step = first; step < end; step++) yield return pipeline.Take(step);
    }

    /// <summary>Sample order of an epoch: a permutation from (seed, epoch), or 0..N-1 without shuffling.</summary>
    public int[] EpochOrder(int epoch)
    {
        lock (_orderGate)
        {
            if (_orderEpoch != epoch)
            {
                if (Shuffle)
                {
                    var rng = new DeterministicRandom(Seed, epoch, -1);
                    _order = rng.Permutation(_samples.Count);
                }
                else _order = Enumerable.Range(0, _samples.Count).ToArray();
                _orderEpoch = epoch;
            }
            return _order;
        }
    }

    /// <summary>Builds the batch of global step <paramref name="step"/> on the calling thread (what the workers run).</summary>
    public ImageBatch BuildBatch(long step)
    {
        int epoch = checked((int)(step / BatchesPerEpoch));
        int b = (int)(step % BatchesPerEpoch);
        var order = EpochOrder(epoch);
        int start = b * BatchSize, count = Math.Min(BatchSize, _samples.Count - start);
        if (Ranks > 1)
        {
            start += Rank * LocalBatchSize;                                                // dropLast: every global batch is full
            count = LocalBatchSize;
        }
        int s = _transform.CropSize, plane = s * s;
        var images = new float[count * 3 * plane];
        var masks = LoadsMasks ? new byte[count * plane] : null;
        var saliency = _saliency != null ? new byte[count * plane] : null;
        var labels = new float[count * NumClasses];
        var names = new string[count];
        var indices = new int[count];
        for (int j = 0; j < count; j++)
        {
            int index = order[start + j];
            var sample = _samples[index];
            indices[j] = index; names[j] = sample.Name;
            foreach (var c in sample.Classes) labels[j * NumClasses + c - 1] = 1f;
            var image = ImageCodec.Load(sample.ImagePath);
            var mask = masks != null ? VocDataset.LoadMask(sample, NumClasses) : null;
            if (mask != null && (mask.Width != image.Width || mask.Height != image.Height))
                throw WeakSegException.ForFile(sample.MaskPath!, $"mask is {mask.Width}x{mask.Height} but its image is {image.Width}x{image.Height}");
            var rng = new DeterministicRandom(Seed, epoch, index);
            var salient = _saliency?.Invoke(sample, image);
            _transform.Apply(image, mask, ref rng, images.AsSpan(j * 3 * plane, 3 * plane), masks != null ? masks.AsSpan(j * plane, plane) : default,
                salient, saliency != null ? saliency.AsSpan(j * plane, plane) : default);
        }
        return new ImageBatch
        {
            Images = images, Masks = masks, Saliency = saliency, Labels = labels, Names = names, Indices = indices,
            Count = count, Height = s, Width = s, NumClasses = NumClasses, Step = step, Epoch = epoch,
        };
    }

    /// <summary>Worker threads claim steps in order within a window of <see cref="Prefetch"/> steps ahead of the consumer.</summary>
    sealed class Pipeline : IDisposable
    {
        readonly BatchLoader _loader;
        readonly long _end;
        readonly object _gate = new();
        readonly Dictionary<long, (ImageBatch? Batch, Exception? Error)> _ready = new();
        readonly Thread[] _threads;
        long _nextToClaim, _consumerAt;
        bool _stopping;

        public Pipeline(BatchLoader loader, long first, long end)
        {
            _loader = loader; _end = end; _nextToClaim = first; _consumerAt = first;
            _threads = new Thread[loader.Workers];
            for (int i = 0; i < _threads.Length; i++)
            {
                _threads[i] = new Thread(Work) { IsBackground = true, Name = $"weakseg-loader-{i}" };
                _threads[i].Start();
            }
        }

        void Work()
        {
            while (true)
            {
                long step;
                lock (_gate)
                {
                    while (!_stopping && (_nextToClaim >= _end || _nextToClaim >= _consumerAt + _loader.Prefetch)) Monitor.Wait(_gate);
                    if (_stopping) return;
                    step = _nextToClaim++;
                }
                (ImageBatch?, Exception?) result;
                try { result = (_loader.BuildBatch(step), null); }
                catch (Exception e) { result = (null, e); }
                lock (_gate)
                {
                    _ready[step] = result;
                    Monitor.PulseAll(_gate);
                }
            }
        }

        public ImageBatch Take(long step)
        {
            (ImageBatch? Batch, Exception? Error) r;
            lock (_gate)
            {
                _consumerAt = step;
                Monitor.PulseAll(_gate);
                while (!_ready.TryGetValue(step, out r)) Monitor.Wait(_gate);
                _ready.Remove(step);
                _consumerAt = step + 1;
                Monitor.PulseAll(_gate);
            }
            if (r.Error != null)
            {
                if (r.Error is WeakSegException) throw new WeakSegException(r.Error.Message, r.Error);
                if (r.Error is IOException or UnauthorizedAccessException)
                    throw new WeakSegException($"loading batch {step} failed: {r.Error.Message}", r.Error);
                throw new InvalidOperationException($"loading batch {step} failed: {r.Error.Message}", r.Error);
            }
            return r.Batch!;
        }

        public void Dispose()
        {
            lock (_gate) { _stopping = true; Monitor.PulseAll(_gate); }
            foreach (var t in _threads) t.Join();
        }
    }
}
