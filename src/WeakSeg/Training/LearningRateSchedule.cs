namespace WeakSeg.Training;

/// <summary>
/// Per-step learning rates, precomputed (DINO-style per-iteration schedule). For step s in [0, T) with warm-up length W:
///   s &lt; W : lr = start + (base − start) · s / W                      (start at s = 0, reaches base at s = W)
/// then, with t = (s − W) / (T − W) ∈ [0, 1):
///   warm-up + cosine : lr = min + (base − min) · (1 + cos(π t)) / 2      (base at s = W, → min as s → T)
///   poly             : lr = min + (base − min) · (1 − t)^power           (mmseg/Segmenter "poly"; base at s = W, → min as s → T)
///   poly from start  : lr = min + (base − min) · (1 − s/T)^power         (ToCo/MoRe PolyWarmupAdamW: s counted from 0)
/// </summary>
public sealed class LearningRateSchedule
{
    readonly double[] _values;

    /// <summary>Warm-up + cosine (the default schedule).</summary>
    public LearningRateSchedule(long totalSteps, double baseLr, double minLr, long warmupSteps, double warmupStartLr)
        : this(ScheduleKind.WarmupCosine, totalSteps, baseLr, minLr, warmupSteps, warmupStartLr, 1.0) { }

    public LearningRateSchedule(ScheduleKind kind, long totalSteps, double baseLr, double minLr, long warmupSteps, double warmupStartLr, double polyPower)
    {
        if (totalSteps < 1) throw new ArgumentOutOfRangeException(nameof(totalSteps));
        if (warmupSteps < 0 || warmupSteps > totalSteps) throw new ArgumentOutOfRangeException(nameof(warmupSteps));
        _values = new double[totalSteps];
        for (long s = 0; s < totalSteps; s++)
            _values[s] = kind switch
            {
                ScheduleKind.Poly => PolyAt(s, totalSteps, baseLr, minLr, polyPower, warmupSteps, warmupStartLr),
                ScheduleKind.PolyFromStart => PolyFromStartAt(s, totalSteps, baseLr, minLr, polyPower, warmupSteps, warmupStartLr),
                _ => At(s, totalSteps, baseLr, minLr, warmupSteps, warmupStartLr),
            };
    }

    public static LearningRateSchedule For(TrainerOptions o) =>
        new(o.Schedule, o.Steps, o.BaseLr, o.MinLr, o.WarmupSteps, o.WarmupStartLr, o.PolyPower);

    /// <summary>Learning rate of step <paramref name="step"/> (0-based).</summary>
    public double this[long step] => _values[step];

    public IReadOnlyList<double> Values => _values;

    /// <summary>Warm-up + cosine as a pure function of the step.</summary>
    public static double At(long step, long totalSteps, double baseLr, double minLr, long warmupSteps, double warmupStartLr)
    {
        if (step < warmupSteps) return warmupStartLr + (baseLr - warmupStartLr) * step / warmupSteps;
        long decaySteps = totalSteps - warmupSteps;
        double t = (double)(step - warmupSteps) / decaySteps;
        return minLr + (baseLr - minLr) * 0.5 * (1 + Math.Cos(Math.PI * t));
    }

    /// <summary>Warm-up + poly decay as a pure function of the step: min + (base − min)·(1 − (s − W)/(T − W))^power after warm-up.</summary>
    public static double PolyAt(long step, long totalSteps, double baseLr, double minLr, double power, long warmupSteps = 0, double warmupStartLr = 0)
    {
        if (step < warmupSteps) return warmupStartLr + (baseLr - warmupStartLr) * step / warmupSteps;
        double t = (double)(step - warmupSteps) / (totalSteps - warmupSteps);
        return minLr + (baseLr - minLr) * Math.Pow(1.0 - t, power);
    }

    /// <summary>
    /// Warm-up + poly decay counted from step 0 (ToCo/MoRe PolyWarmupAdamW): during warm-up the same linear rise as
    /// <see cref="PolyAt"/> (ToCo: start = 1e-6·base), afterwards min + (base − min)·(1 − s/T)^power.
    /// </summary>
    public static double PolyFromStartAt(long step, long totalSteps, double baseLr, double minLr, double power, long warmupSteps = 0, double warmupStartLr = 0)
    {
        if (step < warmupSteps) return warmupStartLr + (baseLr - warmupStartLr) * step / warmupSteps;
        return minLr + (baseLr - minLr) * Math.Pow(1.0 - (double)step / totalSteps, power);
    }

    /// <summary>The scheduled rate of <paramref name="step"/> for options <paramref name="o"/> (without precomputing).</summary>
    public static double At(TrainerOptions o, long step) => o.Schedule switch
    {
        ScheduleKind.Poly => PolyAt(step, o.Steps, o.BaseLr, o.MinLr, o.PolyPower, o.WarmupSteps, o.WarmupStartLr),
        ScheduleKind.PolyFromStart => PolyFromStartAt(step, o.Steps, o.BaseLr, o.MinLr, o.PolyPower, o.WarmupSteps, o.WarmupStartLr),
        _ => At(step, o.Steps, o.BaseLr, o.MinLr, o.WarmupSteps, o.WarmupStartLr),
    };
}
