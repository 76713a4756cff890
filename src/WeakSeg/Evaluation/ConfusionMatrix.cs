namespace WeakSeg.Evaluation;

/// <summary>What a predicted 255 ("ignore", e.g. an uncertain pseudo-label pixel) means when scoring.</summary>
public enum PredIgnorePolicy
{
    /// <summary>The pixel counts as "not predicted": a false negative of its ground-truth class and a false positive of no class.
    /// Pixel accuracy counts it as wrong. This scores a pseudo label by what it actually labels.</summary>
    CountAsMissed,

    /// <summary>The pixel is dropped, as if the ground truth were 255 there (ToCo's pseudo-label scoring). Scores only the labelled part.</summary>
    SkipPixel,
}

/// <summary>Which classes the mean IoU averages over.</summary>
public enum MeanIouRule
{
    /// <summary>Classes with a non-zero union (present in the ground truth or in the prediction); classes absent from both have an
    /// undefined IoU and are skipped — NumPy's nanmean over TP/(GT+Pred−TP), as mmsegmentation's IoU metric does. Default.</summary>
    ClassesWithUnion,

    /// <summary>Classes present in the ground truth only (ToCo's <c>scores</c>: <c>valid = hist.sum(axis=1) &gt; 0</c>); a class
    /// predicted but absent from every ground truth does not lower the mean.</summary>
    ClassesInGroundTruth,
}

/// <summary>
/// Pixel confusion matrix over <see cref="NumClasses"/> classes (background 0 included), rows = ground truth, columns = prediction,
/// plus one extra column counting ground-truth pixels whose prediction was 255 under <see cref="PredIgnorePolicy.CountAsMissed"/>.
/// Ground-truth 255 pixels are ignored. <see cref="Add(byte[], byte[])"/> and <see cref="Merge"/> are thread-safe: each image is
/// counted into a private histogram (the pure per-image step, <see cref="CountInto"/>) which is then added under a lock.
/// </summary>
public sealed class ConfusionMatrix
{
    public const byte Ignore = 255;

    readonly long[] _counts; // [NumClasses, NumClasses + 1]
    readonly object _gate = new();

    public int NumClasses { get; }
    public PredIgnorePolicy PredIgnore { get; }

    /// <param name="numClasses">classes including background (21 for VOC); 1..255</param>
    /// <param name="predIgnore">meaning of predicted 255</param>
    public ConfusionMatrix(int numClasses, PredIgnorePolicy predIgnore = PredIgnorePolicy.CountAsMissed)
    {
        if (numClasses < 1 || numClasses > 255)
            throw new ArgumentOutOfRangeException(nameof(numClasses), $"number of classes {numClasses} must be in 1..255 (255 is the ignore value)");
        NumClasses = numClasses;
        PredIgnore = predIgnore;
        _counts = new long[numClasses * (numClasses + 1)];
    }

    /// <summary>Pixels with ground truth <paramref name="gtClass"/> predicted as <paramref name="predClass"/> (0..K−1), or
    /// predicted 255 when <paramref name="predClass"/> is <see cref="Ignore"/>.</summary>
    public long this[int gtClass, int predClass]
    {
        get
        {
            int col = predClass == Ignore ? NumClasses : predClass;
            if ((uint)gtClass >= (uint)NumClasses || (uint)col > (uint)NumClasses) throw new ArgumentOutOfRangeException(nameof(predClass));
            lock (_gate) return _counts[gtClass * (NumClasses + 1) + col];
        }
    }

    /// <summary>Counts one image. <paramref name="gt"/> and <paramref name="pred"/> are row-major label maps of equal length.</summary>
    /// <exception cref="WeakSegException">lengths differ, or a label is neither a class index nor 255 (message gives value and pixel)</exception>
    public void Add(byte[] gt, byte[] pred)
    {
        var local = new long[_counts.Length];
        CountInto(gt, pred, NumClasses, PredIgnore, local);
        AddCounts(local);
    }

    /// <summary>Adds the counts of <paramref name="other"/> (same class count and policy) to this matrix.</summary>
    public void Merge(ConfusionMatrix other)
    {
        if (other.NumClasses != NumClasses || other.PredIgnore != PredIgnore)
            throw new ArgumentException($"cannot merge a {other.NumClasses}-class/{other.PredIgnore} matrix into a {NumClasses}-class/{PredIgnore} one", nameof(other));
        if (ReferenceEquals(other, this)) throw new ArgumentException("cannot merge a matrix into itself", nameof(other));
        long[] snapshot;
        lock (other._gate) snapshot = (long[])other._counts.Clone();
        AddCounts(snapshot);
    }

    /// <summary>Adds a histogram laid out as <see cref="CountInto"/> fills it.</summary>
    internal void AddCounts(long[] counts)
    {
        if (counts.Length != _counts.Length) throw new ArgumentException("histogram size mismatch", nameof(counts));
        lock (_gate)
            for (int i = 0; i < counts.Length; i++) _counts[i] += counts[i];
    }

    /// <summary>
    /// The pure per-image step: adds the pixel pairs of one image to <paramref name="histogram"/>
    /// (length K·(K+1), index gt·(K+1) + pred, pred 255 ↦ column K). Not locked; the caller owns <paramref name="histogram"/>.
    /// </summary>
    public static void CountInto(ReadOnlySpan<byte> gt, ReadOnlySpan<byte> pred, int numClasses, PredIgnorePolicy predIgnore, long[] histogram)
    {
        if (gt.Length != pred.Length)
            throw new WeakSegException($"ground truth has {gt.Length} pixels but the prediction has {pred.Length}");
        if (histogram.Length != numClasses * (numClasses + 1)) throw new ArgumentException("histogram size mismatch", nameof(histogram));
        int stride = numClasses + 1;
        bool skip = predIgnore == PredIgnorePolicy.SkipPixel;
        for (int i = 0; i < gt.Length; i++)
        {
            int g = gt[i], p = pred[i];
            if (p >= numClasses)
            {
                if (p != Ignore) throw new WeakSegException($"predicted label {p} at pixel {i} is outside the classes 0..{numClasses - 1} (and is not 255)");
                if (g == Ignore || skip) continue;
                p = numClasses;
            }
            if (g >= numClasses)
            {
                if (g == Ignore) continue;
                throw new WeakSegException($"ground-truth label {g} at pixel {i} is outside the classes 0..{numClasses - 1} (and is not 255)");
            }
            histogram[g * stride + p]++;
        }
    }

    /// <summary>A copy of the flat histogram (length K·(K+1), laid out as <see cref="CountInto"/> fills it).</summary>
    public long[] Counts()
    {
        lock (_gate) return (long[])_counts.Clone();
    }

    /// <summary>A matrix holding <paramref name="counts"/> (a histogram from <see cref="Counts"/>, e.g. summed over shards).</summary>
    public static ConfusionMatrix FromCounts(int numClasses, PredIgnorePolicy predIgnore, long[] counts)
    {
        var m = new ConfusionMatrix(numClasses, predIgnore);
        m.AddCounts(counts);
        return m;
    }

    /// <summary>A copy of the counts as [K, K+1] (last column: predicted 255, counted as missed).</summary>
    public long[,] ToArray()
    {
        var a = new long[NumClasses, NumClasses + 1];
        lock (_gate)
            for (int g = 0; g < NumClasses; g++)
                for (int p = 0; p <= NumClasses; p++) a[g, p] = _counts[g * (NumClasses + 1) + p];
        return a;
    }

    /// <summary>Aggregates the counts into metrics (<see cref="SegmentationMetrics"/> documents every formula).</summary>
    public SegmentationMetrics ComputeMetrics(MeanIouRule meanRule = MeanIouRule.ClassesWithUnion)
    {
        long[] c;
        lock (_gate) c = (long[])_counts.Clone();
        return SegmentationMetrics.FromCounts(c, NumClasses, meanRule);
    }
}
