using TorchSharp;
using WeakSeg.Models;
using static TorchSharp.torch;

namespace WeakSeg.Methods.Fsr;

/// <summary>
/// FSR's self-distillation losses and schedules (losses.py FSRLoss, train_voc.py), pure functions. Projector outputs are view-major
/// [2B, 1 + N, K]: rows 0..B−1 view 1, rows B..2B−1 view 2; token 0 is the aggregated class token. With P_t = softmax((t − centre)/τ_t)
/// and log P_s = log_softmax(s/τ_s), CE(t, s) = −Σ_k P_t,k log P_s,k.
/// </summary>
public static class FsrLoss
{
    /// <summary>
    /// cer.FSR (Eq. 9, forward_class): mean over images of CE(teacher view-1 class token − class centre, student view-2 class token).
    /// </summary>
    public static Tensor CertainDistillation(Tensor teacher, Tensor student, Tensor classCenter, double teacherTemperature, double studentTemperature)
    {
        CheckPair(teacher, student);
        using var scope = torch.NewDisposeScope();
        long b = teacher.shape[0] / 2;
        Tensor target;
        using (torch.no_grad())
            target = TeacherProbabilities(teacher.narrow(0, 0, b).select(1, 0), classCenter, teacherTemperature);     // [B, K]
        var logProbabilities = StudentLogProbabilities(student.narrow(0, b, b).select(1, 0), studentTemperature);
        return target.mul(logProbabilities).sum(-1).neg().mean().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// unc.FSR (Eq. 8, forward_patch): per image, Σ over masked view-2 patch tokens of CE(teacher view-2 token − patch centre, student
    /// masked view-2 token) / max(masked count, 1); mean over images. mask [2B, h, w] (only the view-2 half is read); null → 0.
    /// </summary>
    public static Tensor UncertainDistillation(Tensor teacher, Tensor student, Tensor? mask, Tensor patchCenter, double teacherTemperature, double studentTemperature)
    {
        CheckPair(teacher, student);
        if (mask is null) return torch.zeros(1).squeeze(0);
        long rows = teacher.shape[0], b = rows / 2, n = teacher.shape[1] - 1;
        if (mask.shape[0] != rows || mask.numel() != rows * n)
            throw new WeakSegException($"unc.FSR mask must be [{rows}, h, w] with h·w = {n}; got [{string.Join(", ", mask.shape)}]");
        using var scope = torch.NewDisposeScope();
        Tensor target;
        using (torch.no_grad())
            target = TeacherProbabilities(teacher.narrow(0, b, b).narrow(1, 1, n), patchCenter, teacherTemperature);  // [B, N, K]
        var logProbabilities = StudentLogProbabilities(student.narrow(0, b, b).narrow(1, 1, n), studentTemperature);
        var perToken = target.mul(logProbabilities).sum(-1).neg();                                                  // [B, N]
        var weights = mask.narrow(0, b, b).reshape(b, n).to_type(perToken.dtype);
        using var one = 1.0.ToScalar();
        var perImage = perToken.mul(weights).sum(-1).div(weights.sum(-1).clamp_min(one));
        return perImage.mean().MoveToOuterDisposeScope();
    }

    /// <summary>Class centre after a step: m·c + (1 − m)·mean over images of the teacher's view-1 class token. [1, K].</summary>
    public static Tensor UpdatedClassCenter(Tensor classCenter, Tensor teacher, double momentum)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        long b = teacher.shape[0] / 2;
        var batchCenter = teacher.narrow(0, 0, b).select(1, 0).mean(new long[] { 0 }, keepdim: true);                // [1, K]
        return Blend(classCenter, batchCenter, momentum).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Patch centre after a step: m·c + (1 − m)·mean over images of each image's mean over ALL its view-2 patch tokens (masked or
    /// not). [1, 1, K].
    /// </summary>
    public static Tensor UpdatedPatchCenter(Tensor patchCenter, Tensor teacher, double momentum)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        long b = teacher.shape[0] / 2, n = teacher.shape[1] - 1;
        var batchCenter = teacher.narrow(0, b, b).narrow(1, 1, n).mean(new long[] { 1 }, keepdim: true).mean(new long[] { 0 }, keepdim: true);
        return Blend(patchCenter, batchCenter, momentum).MoveToOuterDisposeScope();
    }

    /// <summary>Teacher temperature at <paramref name="step"/>: np.linspace(warm-up, final, W)[step] for step &lt; W, then final.</summary>
    public static double TeacherTemperature(long step, long warmupSteps, double warmupTemperature, double temperature)
    {
        if (step >= warmupSteps) return temperature;
        if (warmupSteps == 1) return warmupTemperature;
        return warmupTemperature + (temperature - warmupTemperature) * step / (warmupSteps - 1);
    }

    /// <summary>Teacher EMA momentum at <paramref name="step"/> of <paramref name="totalSteps"/>: 1 + ½(m₀ − 1)(1 + cos(π·step/T)) (cosine_scheduler to 1).</summary>
    public static double TeacherMomentum(long step, long totalSteps, double baseMomentum)
    {
        if (totalSteps < 1) throw new WeakSegException($"teacher momentum schedule needs ≥ 1 step (got {totalSteps})");
        if (step >= totalSteps) return 1.0;
        return 1.0 + 0.5 * (baseMomentum - 1.0) * (1.0 + Math.Cos(Math.PI * step / totalSteps));
    }

    static Tensor TeacherProbabilities(Tensor teacher, Tensor center, double temperature)
    {
        using var t = temperature.ToScalar();
        return StableScalars.Add(teacher, center.neg()).div(t).softmax(-1);
    }

    static Tensor StudentLogProbabilities(Tensor student, double temperature)
    {
        using var t = temperature.ToScalar();
        return student.div(t).log_softmax(-1);
    }

    static Tensor Blend(Tensor center, Tensor batchCenter, double momentum)
    {
        using var keep = momentum.ToScalar();
        using var take = (1.0 - momentum).ToScalar();
        return StableScalars.Add(center.mul(keep), batchCenter.mul(take));
    }

    static void CheckPair(Tensor teacher, Tensor student)
    {
        if (teacher.dim() != 3 || student.dim() != 3 || teacher.shape[0] % 2 != 0 || !teacher.shape.SequenceEqual(student.shape) || teacher.shape[1] < 2)
            throw new WeakSegException($"FSR loss needs teacher and student outputs [2B, 1 + N, K] of the same shape; got [{string.Join(", ", teacher.shape)}] and [{string.Join(", ", student.shape)}]");
    }
}
