using System.Globalization;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Reft;

/// <summary>
/// pyreft's <c>positions</c> string: "f{p}+l{s}" intervenes on the first p and the last s real tokens of each row
/// ("f1+l1", "f3", "l2"). Counting runs over real tokens only (attention mask 1), so right and left padding give the
/// same positions.
/// </summary>
/// <remarks>
/// Rows shorter than the positions: as pyreft's <c>get_intervention_locations</c>, a row of n real tokens gets
/// min(p, n / 2) first and min(s, n / 2) last positions (integer division), so the two groups never overlap; the
/// slots that do not fit are simply not intervened (pyreft points them at a padding token). A one-token row is
/// therefore left untouched.
/// </remarks>
public readonly record struct ReftPositions(int First, int Last)
{
    /// <summary>Parses "f{p}+l{s}", "f{p}" or "l{s}"; throws <see cref="PeftConfigException"/> naming the text otherwise.</summary>
    public static ReftPositions Parse(string? text)
    {
        var error = new PeftConfigException($"positions '{text}' is not pyreft's form \"f<p>+l<s>\", \"f<p>\" or \"l<s>\" (e.g. \"f1+l1\") with p, s ≥ 0 and at least one > 0");
        if (string.IsNullOrWhiteSpace(text)) throw error;
        int first = 0, last = 0;
        bool seenFirst = false, seenLast = false;
        foreach (var part in text.Split('+'))
        {
            var p = part.Trim();
            if (p.Length < 2 || !int.TryParse(p.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out int n)) throw error;
            if (p[0] == 'f' && !seenFirst && !seenLast) { first = n; seenFirst = true; }
            else if (p[0] == 'l' && !seenLast) { last = n; seenLast = true; }
            else throw error;
        }
        if (first + last == 0) throw error;
        return new ReftPositions(first, last);
    }

    /// <inheritdoc/>
    public override string ToString() => First > 0 && Last > 0 ? $"f{First}+l{Last}" : First > 0 ? $"f{First}" : $"l{Last}";

    /// <summary>
    /// int32 masks [batch, seq, 1] of the first-group and last-group positions of each row (1 = intervene), following
    /// the short-row rule of the remarks. Rows are read from <paramref name="context"/>'s real-token mask.
    /// </summary>
    public (Tensor First, Tensor Last) Masks(ResidualStreamContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        int batch = context.Batch, seq = context.Seq;
        var first = new int[batch * seq];
        var last = new int[batch * seq];
        var real = new List<int>(seq);
        for (int b = 0; b < batch; b++)
        {
            real.Clear();
            for (int t = 0; t < seq; t++)
            {
                if (context.IsReal(b, t)) real.Add(t);
            }
            int n = real.Count, f = Math.Min(First, n / 2), l = Math.Min(Last, n / 2);
            for (int k = 0; k < f; k++) first[b * seq + real[k]] = 1;
            for (int k = n - l; k < n; k++) last[b * seq + real[k]] = 1;
        }
        return (Tensor.FromInt32(first, batch, seq, 1), Tensor.FromInt32(last, batch, seq, 1));
    }
}
