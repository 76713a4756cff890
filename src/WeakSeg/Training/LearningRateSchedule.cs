namespace WeakSeg.Training;

/// <summary>
/// Linear warm-up then cosine decay, precomputed per step (DINO-style per-iteration schedule).
/// For step s in [0, T) with warm-up length W:
///   s &lt; W : lr = start + (base − start) · s / W                      (start at s = 0, reaches base at s = W)
///   s ≥ W : lr = min + (base − min) · (1 + cos(π (s − W) / (T − W))) / 2   (base at s = W, → min as s → T)
/// </summary>
public sealed class LearningRateSchedule
{
    readonly double[] _values;

    public LearningRateSchedule(long totalSteps, double baseLr, double minLr, long warmupSteps, double warmupStartLr)
    {
        if (totalSteps < 1) throw new ArgumentOutOfRangeException(nameof(totalSteps));
        if (warmupSteps < 0 || warmupSteps > totalSteps) throw new ArgumentOutOfRangeException(nameof(warmupSteps));
        _values = new double[totalSteps];
        for (long s = 0; s < totalSteps; s++) _values[s] = At(s, totalSteps, baseLr, minLr, warmupSteps, warmupStartLr);
    }

    public static LearningRateSchedule For(TrainerOptions o) => new(o.Steps, o.BaseLr, o.MinLr, o.WarmupSteps, o.WarmupStartLr);

    /// <summary>Learning rate of step <paramref name="step"/> (0-based).</summary>
    public double this[long step] => _values[step];

    public IReadOnlyList<double> Values => _values;

    /// <summary>The schedule as a pure function of the step.</summary>
    public static double At(long step, long totalSteps, double baseLr, double minLr, long warmupSteps, double warmupStartLr)
    {
        if (step < warmupSteps) return warmupStartLr + (baseLr - warmupStartLr) * step / warmupSteps;
        long decaySteps = totalSteps - warmupSteps;
        double t = (double)(step - warmupSteps) / decaySteps;
        return minLr + (baseLr - minLr) * 0.5 * (1 + Math.Cos(Math.PI * t));
    }
}
